import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { doc, flag, pathField } from './fields.js';

/*
 * Per-certificate TLS options. Only what HAProxy 2.6 accepts in a crt-list line added at runtime
 * (DESIGN §4) is allowed, because each certificate is deployed with `add ssl crt-list` and an
 * option HAProxy rejects there would fail the deploy long after the config was accepted.
 */

export const TLS_VERSIONS = ['SSLv3', 'TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
export const CLIENT_AUTH_MODES = ['none', 'optional', 'required'] as const;

/** The keys of `tls`, in the order their crt-list words are written. */
export const SUPPORTED_TLS_OPTIONS = [
  'alpn',
  'ciphers',
  'ciphersuites',
  'curves',
  'ecdhe',
  'minVersion',
  'maxVersion',
  'allow0rtt',
  'noCaNames',
  'clientAuth',
  'clientCa',
] as const;

/** HAProxy's own spelling, as people copy it from bind lines, mapped to ours. */
const HAPROXY_SPELLING: Readonly<Record<string, string>> = {
  'ssl-min-ver': 'minVersion',
  'ssl-max-ver': 'maxVersion',
  'allow-0rtt': 'allow0rtt',
  'no-ca-names': 'noCaNames',
  verify: 'clientAuth',
  'ca-file': 'clientCa',
};

/*
 * Value charsets. A crt-list line is `path [opt value opt value] sni` inside a runtime command, so
 * a value must never hold spaces, `]`, `;`, `#`, quotes or line breaks; these allow-lists keep to
 * what the OpenSSL and ALPN names actually use.
 */
const CHARSETS = {
  alpn: { re: /^[A-Za-z0-9._/-]{1,255}$/, says: 'letters, digits, . _ / - (e.g. h2, http/1.1)' },
  ciphers: { re: /^[A-Za-z0-9_:+!@=.-]{1,1024}$/, says: 'an OpenSSL cipher list: letters, digits, _ : + ! @ = . -' },
  ciphersuites: { re: /^[A-Za-z0-9_:]{1,1024}$/, says: 'TLS 1.3 suite names joined by ":" (e.g. TLS_AES_128_GCM_SHA256)' },
  curve: { re: /^[A-Za-z0-9_-]{1,64}$/, says: 'a curve name: letters, digits, _ - (e.g. X25519, P-256, prime256v1)' },
  caFile: { re: /^[A-Za-z0-9._/@+=:-]{1,1024}$/, says: 'letters, digits and . _ / @ + = : -' },
} as const;

type Charset = (typeof CHARSETS)[keyof typeof CHARSETS];

function word(charset: Charset) {
  return z.string().regex(charset.re, `expected ${charset.says}; no spaces, brackets, ";" or "#"`);
}

/** A list written either as a YAML list or as one string joined by `sep`, as HAProxy writes it. */
function wordList(charset: Charset, sep: string, what: string) {
  return z.preprocess(
    (v) => (typeof v === 'string' ? v.split(sep).map((s) => s.trim()) : v),
    z.array(word(charset)).min(1, `list at least one ${what}`),
  );
}

function unsupportedOptionMessage(keys: readonly string[]): string {
  const parts = keys.map((k) => {
    const ours = HAPROXY_SPELLING[k];
    return ours ? `"${k}" (write it as ${ours})` : `"${k}"`;
  });
  return (
    `unsupported tls option ${parts.join(', ')}: HAProxy 2.6 accepts only these per certificate in a crt-list ` +
    `line at runtime: ${SUPPORTED_TLS_OPTIONS.join(', ')}; set anything else on the bind line instead`
  );
}

/** The `tls` block of a certificate. Relative clientCa paths resolve against baseDir. */
export function tlsSchema(baseDir: string) {
  return z
    .strictObject(
      {
        alpn: wordList(CHARSETS.alpn, ',', 'ALPN protocol').optional().meta(doc('ALPN protocols offered, a list or "h2,http/1.1" (crt-list `alpn`).', ['h2', 'http/1.1'])),
        ciphers: word(CHARSETS.ciphers).optional().meta(doc('OpenSSL cipher list for TLS 1.2 and below (`ciphers`).', 'ECDHE+AESGCM:ECDHE+CHACHA20')),
        ciphersuites: word(CHARSETS.ciphersuites).optional().meta(doc('TLS 1.3 cipher suites (`ciphersuites`).', 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256')),
        curves: wordList(CHARSETS.curve, ':', 'curve').optional().meta(doc('Key-exchange groups, a list or "X25519:P-256" (`curves`).', ['X25519', 'P-256'])),
        ecdhe: word(CHARSETS.curve).optional().meta(doc('The one ECDHE curve (`ecdhe`).', 'prime256v1')),
        minVersion: z.enum(TLS_VERSIONS).optional().meta(doc('Lowest TLS version (`ssl-min-ver`).', 'TLSv1.2')),
        maxVersion: z.enum(TLS_VERSIONS).optional().meta(doc('Highest TLS version (`ssl-max-ver`).', 'TLSv1.3')),
        allow0rtt: flag().optional().meta(doc('Accept TLS 1.3 early data (`allow-0rtt`).', false)),
        noCaNames: flag().optional().meta(doc('Do not send the CA names list to clients (`no-ca-names`).', true)),
        clientAuth: z.enum(CLIENT_AUTH_MODES).optional().meta(doc('Client certificates (mTLS, `verify`); optional and required need clientCa.', 'required')),
        clientCa: pathField(baseDir).optional().meta(doc('PEM of the CAs that sign client certificates, loaded in memory as an `ssl ca-file`.', './clients-ca.pem')),
      },
      {
        error: (iss) => (iss.code === 'unrecognized_keys' ? unsupportedOptionMessage(iss.keys) : undefined),
      },
    )
    .superRefine((tls, ctx) => {
      const verifying = tls.clientAuth === 'optional' || tls.clientAuth === 'required';
      if (verifying && tls.clientCa === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['clientCa'],
          message: `clientAuth: ${tls.clientAuth} needs clientCa: the PEM file of the CAs that sign client certificates`,
        });
      }
      if (!verifying && tls.clientCa !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['clientCa'],
          message: 'clientCa is set but clientAuth is not: add clientAuth: optional or required, or remove clientCa',
        });
      }
      if (tls.minVersion && tls.maxVersion && TLS_VERSIONS.indexOf(tls.minVersion) > TLS_VERSIONS.indexOf(tls.maxVersion)) {
        ctx.addIssue({
          code: 'custom',
          path: ['minVersion'],
          message: `minVersion ${tls.minVersion} is above maxVersion ${tls.maxVersion}`,
        });
      }
    });
}

/** Validated per-certificate TLS options (clientCa is an absolute path). */
export type TlsOptions = z.output<ReturnType<typeof tlsSchema>>;

function checked(keyword: string, value: unknown, charset: Charset): string {
  if (typeof value !== 'string' || !charset.re.test(value)) {
    throw new ConfigError(
      `tls ${keyword} value ${JSON.stringify(value)} cannot go into a crt-list line: expected ${charset.says}`,
    );
  }
  return value;
}

function oneOf<T extends string>(keyword: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw new ConfigError(`tls ${keyword} value ${JSON.stringify(value)} is not one of ${allowed.join(', ')}`);
  }
  return value as T;
}

/**
 * Renders TLS options as crt-list option words in HAProxy syntax, e.g.
 * `["alpn h2,http/1.1", "ssl-min-ver TLSv1.2", "verify required", "ca-file clients.pem"]`; the
 * caller joins them inside `[…]`. `caFileName` is the name the client CA was loaded under with
 * `new/set/commit ssl ca-file` (HAProxy 2.6 takes only an in-memory CA here); it is required when
 * clientAuth is optional or required.
 * Every value is checked again against the strict charsets, so options built in code cannot
 * inject into a runtime command either. Throws ConfigError. Pure; safe to call concurrently.
 */
export function tlsToCrtListOptions(tls: TlsOptions, caFileName?: string): string[] {
  const words: string[] = [];
  if (tls.alpn !== undefined) {
    words.push(`alpn ${listOf('alpn', tls.alpn).map((p) => checked('alpn', p, CHARSETS.alpn)).join(',')}`);
  }
  if (tls.ciphers !== undefined) words.push(`ciphers ${checked('ciphers', tls.ciphers, CHARSETS.ciphers)}`);
  if (tls.ciphersuites !== undefined) {
    words.push(`ciphersuites ${checked('ciphersuites', tls.ciphersuites, CHARSETS.ciphersuites)}`);
  }
  if (tls.curves !== undefined) {
    words.push(`curves ${listOf('curves', tls.curves).map((c) => checked('curves', c, CHARSETS.curve)).join(':')}`);
  }
  if (tls.ecdhe !== undefined) words.push(`ecdhe ${checked('ecdhe', tls.ecdhe, CHARSETS.curve)}`);
  if (tls.minVersion !== undefined) words.push(`ssl-min-ver ${oneOf('minVersion', tls.minVersion, TLS_VERSIONS)}`);
  if (tls.maxVersion !== undefined) words.push(`ssl-max-ver ${oneOf('maxVersion', tls.maxVersion, TLS_VERSIONS)}`);
  if (tls.allow0rtt === true) words.push('allow-0rtt');
  if (tls.noCaNames === true) words.push('no-ca-names');
  if (tls.clientAuth !== undefined) {
    const mode = oneOf('clientAuth', tls.clientAuth, CLIENT_AUTH_MODES);
    words.push(`verify ${mode}`);
    if (mode !== 'none') {
      if (caFileName === undefined) {
        throw new ConfigError(
          `clientAuth ${mode} needs a client CA: load clientCa with new/set/commit ssl ca-file and pass its name`,
        );
      }
      words.push(`ca-file ${checked('ca-file', caFileName, CHARSETS.caFile)}`);
    }
  }
  return words;
}

function listOf(keyword: string, value: unknown): unknown[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new ConfigError(`tls ${keyword} must be a non-empty list`);
  }
  return value;
}
