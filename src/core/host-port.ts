import { isIP } from 'node:net';
import { ConfigError } from './errors.js';
import { validateName } from './names.js';

/** A TCP/UDP endpoint. `host` is an IP literal (IPv6 without brackets) or a lowercase host name. */
export interface HostPort {
  host: string;
  port: number;
}

export interface HostPortOptions {
  /** Filled in when the text names only a host (`ns1.example.com`, `10.0.0.53`, `::1`). */
  defaultPort?: number;
  /** Port 0 accepted (a listener picking a free port). */
  allowPortZero?: boolean;
  /** An empty host accepted (`:9180`, a listener on every address). */
  allowAnyHost?: boolean;
}

/**
 * Reads `host:port`, `[v6]:port`, or a bare host/IP when a default port is given: the one
 * parser for every host:port the daemon reads (config, API listen, DNS servers, runtime
 * addresses, `stats socket` lines). Throws ConfigError saying what is wrong. Pure.
 */
export function parseHostPort(text: string, opts: HostPortOptions = {}): HostPort {
  const shown = JSON.stringify(text);
  const fail = (why: string): never => {
    throw new ConfigError(`${shown} is not host:port: ${why}`);
  };
  const m = /^(?:\[([^\]]*)\]|([^:[\]\s]*))(?::(\d{1,5}))?$/.exec(text);
  let host: string;
  let portText: string | undefined;
  if (m) {
    host = m[1] ?? m[2]!;
    portText = m[3];
    if (m[1] !== undefined && isIP(m[1]) !== 6) fail('brackets are for IPv6 literals only, e.g. [::1]:9180');
  } else if (opts.defaultPort !== undefined && isIP(text) === 6) {
    host = text;
  } else if (isIP(text.slice(0, text.lastIndexOf(':'))) === 6) {
    return fail(`write an IPv6 address with a port in brackets, e.g. [${text.slice(0, text.lastIndexOf(':'))}]:${text.slice(text.lastIndexOf(':') + 1)}`);
  } else {
    return fail(`expected host:port like 127.0.0.1:9180 or [::1]:9180${opts.defaultPort === undefined ? '' : `, or a host alone (port ${opts.defaultPort})`}`);
  }
  if (host === '' && !opts.allowAnyHost) fail('the host is missing');
  if (host !== '' && isIP(host) === 0 && !isHostName(host)) fail(`${JSON.stringify(host)} is not an IP address or host name`);
  if (portText === undefined && opts.defaultPort === undefined) fail('the port is missing, e.g. 127.0.0.1:9180');
  const port = portText === undefined ? opts.defaultPort! : Number(portText);
  const min = opts.allowPortZero ? 0 : 1;
  if (!Number.isInteger(port) || port < min || port > 65535) fail(`port ${portText ?? port} is out of range (${min}-65535)`);
  return { host: host.toLowerCase(), port };
}

/** parseHostPort, undefined instead of an error (for a check that only needs yes or no). Pure. */
export function tryParseHostPort(text: string, opts: HostPortOptions = {}): HostPort | undefined {
  try {
    return parseHostPort(text, opts);
  } catch {
    return undefined;
  }
}

/** `host:port` with IPv6 hosts in brackets. Pure. */
export function formatHostPort({ host, port }: HostPort): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** An unspecified address (`0.0.0.0`, `::`, or none): a listener on every address. */
export function isAnyHost(host: string): boolean {
  return host === '' || host === '*' || host === '0.0.0.0' || host === '::';
}

function isHostName(host: string): boolean {
  try {
    validateName(host);
    return true;
  } catch {
    return false;
  }
}
