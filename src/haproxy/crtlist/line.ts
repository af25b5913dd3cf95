import { ConfigError } from '../../core/errors.js';
import { checkCrtListOption, checkPath, checkSniFilter } from '../runtime/args.js';

/*
 * The one place a crt-list line is rendered: the line written to the crt-list file and the payload
 * of `add ssl crt-list` come from formatCrtListLine, so a restarted HAProxy reads exactly what the
 * runtime API was given. Options arrive typed, their values validated where they were made (config
 * or code); every rendered word still passes the protocol-edge allow-list (runtime/args.ts), which
 * keeps a value built in code from changing the line's shape in the file or in a runtime command.
 */

export const TLS_VERSIONS = ['SSLv3', 'TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
export type TlsVersion = (typeof TLS_VERSIONS)[number];
export const CLIENT_AUTH_MODES = ['none', 'optional', 'required'] as const;
export type ClientAuthMode = (typeof CLIENT_AUTH_MODES)[number];

/** A certificate's own TLS options (from config: config/tls.ts checks the values). */
export interface CertTlsOptions {
  alpn?: readonly string[];
  ciphers?: string;
  ciphersuites?: string;
  curves?: readonly string[];
  ecdhe?: string;
  minVersion?: TlsVersion;
  maxVersion?: TlsVersion;
  allow0rtt?: boolean;
  noCaNames?: boolean;
  clientAuth?: ClientAuthMode;
}

/** The options of one crt-list line: the certificate's, plus the name its client CA is loaded under. */
export interface CrtListOptions extends CertTlsOptions {
  /** Runtime name of the in-memory CA (`ssl ca-file`); needed when clientAuth is optional or required. */
  caFile?: string;
}

/** A crt-list line to render: `path [options] sni…`. */
export interface CrtListLineParts {
  path: string;
  options?: CrtListOptions;
  /** SNI filters; none means the certificate's own names. */
  sni?: readonly string[];
}

type Renderers = { [K in keyof Required<CrtListOptions>]: (value: NonNullable<CrtListOptions[K]>, all: CrtListOptions) => string | undefined };

/** Each option's HAProxy word, in the order written; a key without an entry here does not compile. */
const RENDER: Renderers = {
  alpn: (v) => `alpn ${joined('alpn', v, ',')}`,
  ciphers: (v) => `ciphers ${v}`,
  ciphersuites: (v) => `ciphersuites ${v}`,
  curves: (v) => `curves ${joined('curves', v, ':')}`,
  ecdhe: (v) => `ecdhe ${v}`,
  minVersion: (v) => `ssl-min-ver ${v}`,
  maxVersion: (v) => `ssl-max-ver ${v}`,
  allow0rtt: (v) => (v ? 'allow-0rtt' : undefined),
  noCaNames: (v) => (v ? 'no-ca-names' : undefined),
  clientAuth: (v, all) => {
    if (v !== 'none' && all.caFile === undefined) {
      throw new ConfigError(`clientAuth ${v} needs a client CA: load clientCa with new/set/commit ssl ca-file and pass its name as caFile`);
    }
    return `verify ${v}`;
  },
  caFile: (v, all) => (all.clientAuth === 'optional' || all.clientAuth === 'required' ? `ca-file ${v}` : undefined),
};

/** Every option key, in rendering order. */
export const CRT_LIST_OPTION_KEYS = Object.keys(RENDER) as (keyof CrtListOptions)[];

/** A list option as one word; an element holding the separator would turn into two. */
function joined(keyword: string, list: readonly string[], sep: string): string {
  if (list.length === 0 || list.some((item) => item === '' || item.includes(sep))) {
    throw new ConfigError(`tls ${keyword} ${JSON.stringify(list)} cannot go into a crt-list line: give one or more non-empty items without "${sep}"`);
  }
  return list.join(sep);
}

/**
 * Renders options as crt-list words, e.g. `["alpn h2,http/1.1", "ssl-min-ver TLSv1.2", "verify
 * required", "ca-file /certs/ca/x.pem"]`. Throws ConfigError for verification without caFile,
 * InvalidNameError for a word the runtime API would not read as one option. Pure.
 */
export function crtListOptionWords(options: CrtListOptions = {}): string[] {
  const words: string[] = [];
  for (const key of CRT_LIST_OPTION_KEYS) {
    const value = options[key];
    if (value === undefined) continue;
    const word = (RENDER[key] as (v: unknown, all: CrtListOptions) => string | undefined)(value, options);
    if (word !== undefined) words.push(checkCrtListOption(word));
  }
  return words;
}

/**
 * The crt-list line `path [options] sni…`, as written in the file and sent with `add ssl crt-list`.
 * Path and SNI filters are checked like every runtime argument (InvalidNameError). Pure.
 */
export function formatCrtListLine(line: CrtListLineParts): string {
  const words = crtListOptionWords(line.options);
  const sni = (line.sni ?? []).map(checkSniFilter);
  return [checkPath(line.path), words.length > 0 ? `[${words.join(' ')}]` : '', ...sni].filter(Boolean).join(' ');
}
