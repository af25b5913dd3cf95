/**
 * Just enough of an existing haproxy.cfg to know what `haproxy-config --merge` must still add:
 * section names, the global `stats socket`s and `lua-load`s. Not a validator (`haproxy -c` is).
 * Pure.
 */

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
  if (daemonRuntime.startsWith('unix:')) {
    const path = daemonRuntime.slice('unix:'.length);
    return statsAddress === path || statsAddress === `unix@${path}`;
  }
  const want = daemonRuntime.slice('tcp:'.length);
  const have = statsAddress.replace(/^(ipv4|ipv6|tcp)@/, '');
  const port = (a: string) => a.slice(a.lastIndexOf(':') + 1);
  const host = (a: string) => a.slice(0, a.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1');
  return port(have) === port(want) && ['', '*', '0.0.0.0', '::', host(want)].includes(host(have));
}
