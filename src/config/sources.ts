import { z } from 'zod';
import { duration, MAX_TIMER_MS } from './duration.js';
import { doc, httpUrl, pathField, dnsName } from './fields.js';

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/;

function directorySource(baseDir: string) {
  return z.strictObject({
    type: z.literal('directory'),
    path: pathField(baseDir).meta(
      doc('A certbot-style tree (`live/<name>/fullchain.pem` + `privkey.pem`), Kubernetes secret mounts, or a flat directory of combined PEMs.', '/etc/letsencrypt/live'),
    ),
    every: duration({ maxMs: MAX_TIMER_MS }).prefault('1m').meta(doc('Rescan interval, a backstop for changes the file watcher misses (network mounts).')),
  }).meta(doc('A watched directory of certificates.'));
}

function httpSource(baseDir: string) {
  return z.strictObject({
    type: z.literal('http'),
    url: httpUrl().meta(doc('Where the PEM bundle (chain + key) is fetched; may hold `{name}`, replaced by each of names.', 'https://vault.internal/certs/{name}.pem')),
    names: z
      .array(dnsName({ wildcard: true }))
      .optional()
      .meta(doc('The names a `{name}` URL is fetched for, one bundle each.', ['shop.example.com'])),
    headers: z
      .record(
        z.string().regex(HEADER_NAME, 'a header name is an HTTP token (letters, digits, - and a few symbols)'),
        // Values reach an HTTP request line by line: a CR or LF would smuggle another header.
        z.string().regex(/^[^\r\n\0]*$/, 'a header value cannot contain line breaks or NUL'),
      )
      .prefault({})
      .meta(doc('Request headers (values may use ${VAR}).', { Authorization: 'Bearer ${VAULT_TOKEN}' })),
    every: duration({ maxMs: MAX_TIMER_MS }).prefault('1h').meta(doc('How often each URL is fetched again (with ETag: unchanged costs nothing).')),
    timeout: duration({ maxMs: MAX_TIMER_MS }).prefault('10s').meta(doc('Bound on one fetch.')),
    caBundle: pathField(baseDir).optional().meta(doc("Trust for the server's TLS; the system store otherwise.", './vault-ca.pem')),
  }).meta(doc('PEM bundles fetched over HTTP(S).'));
}

/** One entry under `sources:`, chosen by `type`. Relative paths resolve against baseDir. */
export function sourceSchema(baseDir: string) {
  return z.discriminatedUnion('type', [directorySource(baseDir), httpSource(baseDir)]);
}
