import { isIP } from 'node:net';
import { ConfigError } from '../../core/errors.js';
import { formatHostPort, parseHostPort, type HostPort } from '../../core/host-port.js';

/** Where an HAProxy runtime API (a `stats socket`) listens. */
export type RuntimeAddress =
  | { kind: 'unix'; path: string }
  | { kind: 'tcp'; host: string; port: number };

const HINT = 'write "unix:/run/haproxy/admin.sock", "/run/haproxy/admin.sock" or "tcp:127.0.0.1:9999"';

/**
 * Parses a runtime API address as operators write it, in our forms (`unix:/path`, `/path`,
 * `tcp:host:port`) or a bare path (absolute or `./`), or HAProxy's own (`unix@/path`, `ipv4@host:port`, `ipv6@[::1]:port`), so a
 * `stats socket` line can be pasted as is. Throws ConfigError naming the accepted forms.
 * Safe to call concurrently (pure).
 */
export function parseRuntimeAddress(input: string): RuntimeAddress {
  const text = input.trim();
  const shown = JSON.stringify(input);
  const prefix = /^(unix|tcp|ipv4|ipv6)[:@]/.exec(text);
  if (!prefix) {
    if (/^\.{0,2}\//.test(text)) return unix(text, shown);
    if (/^abns@/.test(text)) {
      throw new ConfigError(`runtime address ${shown}: abns@ sockets live in HAProxy's network namespace only; ${HINT}`);
    }
    throw new ConfigError(`runtime address ${shown} is not understood: ${HINT}`);
  }
  const rest = text.slice(prefix[0].length);
  if (prefix[1] === 'unix') return unix(rest, shown);
  return tcp(rest, prefix[1] as 'tcp' | 'ipv4' | 'ipv6', shown);
}

/** The canonical text form (`unix:/path` or `tcp:host:port`), for logs and status pages. */
export function formatRuntimeAddress(a: RuntimeAddress): string {
  return a.kind === 'unix' ? `unix:${a.path}` : `tcp:${formatHostPort(a)}`;
}

/** The socket path of a unix address (a master CLI socket); ConfigError for any other. Pure. */
export function unixSocketPath(input: string): string {
  const a = parseRuntimeAddress(input);
  if (a.kind !== 'unix') throw new ConfigError(`${JSON.stringify(input)} is not a unix socket: write unix:/path/to/master.sock`);
  return a.path;
}

function unix(path: string, shown: string): RuntimeAddress {
  // eslint-disable-next-line no-control-regex
  if (path.length === 0 || /[\x00-\x1f]/.test(path)) {
    throw new ConfigError(`runtime address ${shown}: give the socket's path, e.g. unix:/run/haproxy/admin.sock`);
  }
  return { kind: 'unix', path };
}

function tcp(rest: string, family: 'tcp' | 'ipv4' | 'ipv6', shown: string): RuntimeAddress {
  let hp: HostPort;
  try {
    hp = parseHostPort(rest);
  } catch (err) {
    throw new ConfigError(`runtime address ${shown}: ${(err as Error).message}`);
  }
  const ipVersion = isIP(hp.host);
  if ((family === 'ipv4' && ipVersion !== 4) || (family === 'ipv6' && ipVersion !== 6)) {
    throw new ConfigError(`runtime address ${shown}: ${family}@ needs an IP${family.slice(2)} literal`);
  }
  return { kind: 'tcp', ...hp };
}
