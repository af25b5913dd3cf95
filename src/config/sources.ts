import { z } from 'zod';
import { duration, MAX_TIMER_MS } from './duration.js';
import { httpUrl, pathField, dnsName } from './fields.js';

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/;

function directorySource(baseDir: string) {
  return z.strictObject({
    type: z.literal('directory'),
    /** A certbot-style tree (`live/<name>/fullchain.pem` + `privkey.pem`) or a flat PEM directory. */
    path: pathField(baseDir),
    /** Rescan interval, a backstop for changes a file watcher misses (network mounts). */
    every: duration({ maxMs: MAX_TIMER_MS }).prefault('1m'),
  });
}

function httpSource(baseDir: string) {
  return z.strictObject({
    type: z.literal('http'),
    /** May hold `{name}`, replaced by each of `names`. */
    url: httpUrl(),
    /** The names a `{name}` URL is fetched for (one bundle each). */
    names: z.array(dnsName({ wildcard: true })).optional(),
    headers: z
      .record(
        z.string().regex(HEADER_NAME, 'a header name is an HTTP token (letters, digits, - and a few symbols)'),
        // Values reach an HTTP request line by line: a CR or LF would smuggle another header.
        z.string().regex(/^[^\r\n\0]*$/, 'a header value cannot contain line breaks or NUL'),
      )
      .prefault({}),
    every: duration({ maxMs: MAX_TIMER_MS }).prefault('1h'),
    timeout: duration({ maxMs: MAX_TIMER_MS }).prefault('10s'),
    caBundle: pathField(baseDir).optional(),
  });
}

/** One entry under `sources:`, chosen by `type`. Relative paths resolve against baseDir. */
export function sourceSchema(baseDir: string) {
  return z.discriminatedUnion('type', [directorySource(baseDir), httpSource(baseDir)]);
}
