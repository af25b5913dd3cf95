import { z } from 'zod';
import { CLIENT_AUTH_MODES, TLS_VERSIONS, type CertTlsOptions } from '../haproxy/crtlist/line.js';
import { doc, flag, pathField } from './fields.js';

/*
 * Per-certificate TLS options. Only what HAProxy 2.6 accepts in a crt-list line added at runtime
 * (DESIGN §4) is allowed, because each certificate is deployed with `add ssl crt-list` and an
 * option HAProxy rejects there would fail the deploy long after the config was accepted.
 */

export { CLIENT_AUTH_MODES, TLS_VERSIONS };

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
 * Value charsets, checked here once, with the key path in the error. A crt-list line is
 * `path [opt value opt value] sni` inside a runtime command, so a value must never hold spaces,
 * `]`, `;`, `#`, quotes or line breaks; these allow-lists keep to what the OpenSSL and ALPN names
 * actually use. (haproxy/crtlist/line.ts renders the words; runtime/args.ts guards their shape.)
 */
const CHARSETS = {
  alpn: { re: /^[A-Za-z0-9._/-]{1,255}$/, says: 'letters, digits, . _ / - (e.g. h2, http/1.1)' },
  ciphers: { re: /^[A-Za-z0-9_:+!@=.-]{1,1024}$/, says: 'an OpenSSL cipher list: letters, digits, _ : + ! @ = . -' },
  ciphersuites: { re: /^[A-Za-z0-9_:]{1,1024}$/, says: 'TLS 1.3 suite names joined by ":" (e.g. TLS_AES_128_GCM_SHA256)' },
  curve: { re: /^[A-Za-z0-9_-]{1,64}$/, says: 'a curve name: letters, digits, _ - (e.g. X25519, P-256, prime256v1)' },
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

/**
 * The crt-list options of a validated `tls` block. clientCa is the PEM file to load; the name it is
 * loaded under (the line's `ca-file`) is the deployer's to give (haproxy/deploy/entry.ts). Pure.
 */
export function crtListOptionsOf(tls: TlsOptions): CertTlsOptions {
  const { clientCa: _loadedByTheDeployer, ...options } = tls;
  return options;
}
