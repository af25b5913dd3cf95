/**
 * Just enough of an existing haproxy.cfg to know what `haproxy-config --merge` must still add:
 * section names, the global `stats socket`s and `lua-load`s. Not a validator (`haproxy -c` is).
 * Pure.
 */
import { isAnyHost, tryParseHostPort, type HostPort } from '../../core/host-port.js';
import { parseRuntimeAddress } from '../runtime/address.js';

export interface ExistingConfig {
  /** `frontend x`, `backend y`, `listen z`… as written (keyword and name). */
  sections: Set<string>;
  /** Addresses of `stats socket` lines in `global`, as written (`/run/haproxy/admin.sock`, `ipv4@…`). */
  statsSockets: { address: string; admin: boolean }[];
  luaLoads: string[];
}

/** HAProxy's section keywords (a line starting with one opens a section). */
const SECTION_KEYWORDS = new Set([
  'global', 'defaults', 'frontend', 'backend', 'listen', 'peers', 'resolvers', 'userlist', 'program',
  'http-errors', 'ring', 'cache', 'mailers', 'crt-store', 'traces',
]);

export function readExistingConfig(text: string): ExistingConfig {
  const found: ExistingConfig = { sections: new Set(), statsSockets: [], luaLoads: [] };
  let section = '';
  for (const raw of text.split('\n')) {
    const words = raw.replace(/#.*/, '').trim().split(/\s+/).filter(Boolean);
    const [keyword, ...args] = words;
    if (!keyword) continue;
    if (SECTION_KEYWORDS.has(keyword)) {
      section = keyword;
      if (args[0] !== undefined) found.sections.add(`${keyword} ${args[0]}`);
      continue;
    }
    if (section !== 'global') continue;
    if (keyword === 'stats' && args[0] === 'socket' && args[1] !== undefined) {
      const level = args.indexOf('level');
      found.statsSockets.push({ address: args[1], admin: level > 0 && args[level + 1] === 'admin' });
    } else if (keyword === 'lua-load' && args[0] !== undefined) {
      found.luaLoads.push(args[0]);
    }
  }
  return found;
}

/**
 * Whether a `stats socket` address serves the runtime address the daemon uses: the same unix
 * path, or the same TCP port on that host or on every address.
 */
export function socketServes(statsAddress: string, daemonRuntime: string): boolean {
  const want = parseRuntimeAddress(daemonRuntime);
  if (want.kind === 'unix') return statsAddress === want.path || statsAddress === `unix@${want.path}`;
  const have = statsListenAddress(statsAddress);
  return have !== undefined && have.port === want.port && (isAnyHost(have.host) || have.host === want.host);
}

/**
 * A TCP `stats socket` address as HAProxy takes it: `ipv4@`/`ipv6@` prefixes, `*` or nothing
 * for every address, IPv6 with or without brackets (`ipv6@::1:9999`). Undefined for a path.
 */
function statsListenAddress(address: string): HostPort | undefined {
  let text = address.replace(/^(ipv4|ipv6|tcp)@/, '').replace(/^\*:/, ':');
  const lastColon = text.lastIndexOf(':');
  if (!text.startsWith('[') && text.indexOf(':') !== lastColon) text = `[${text.slice(0, lastColon)}]:${text.slice(lastColon + 1)}`;
  return tryParseHostPort(text, { allowAnyHost: true });
}
