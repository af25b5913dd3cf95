import { resolve } from 'node:path';
import { z } from 'zod';
import { HOW_TO_MAKE_KEY_FILE, KEY_FILE_RECIPE } from '../crypto/secret-box.js';
import { duration, MAX_TIMER_MS } from './duration.js';
import { doc, pathField, wholeNumber } from './fields.js';


/** TLS to PostgreSQL, named as libpq's sslmode (only the modes that mean one thing each). */
export const PG_SSL_MODES = ['disable', 'require', 'verify-full'] as const;

/** How the daemons sharing a postgres store divide the work (docs/ha.md). */
export const REPLICA_MODES = ['active-standby', 'active-active'] as const;

/** The shortest daemon lease: a refresh every third of it must survive a loaded machine. */
export const MIN_LEASE_MS = 5_000;

/*
 * A message here never quotes the URL: it may hold a password. So the URL field checks its own
 * shape with messages of its own, and the problems list names only the key.
 */
const postgresUrl = z.string({ error: 'required: store.url, e.g. postgres://certd@db.example.com:5432/certd' }).superRefine((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'not a URL: write postgres://user@host:port/database' });
    return;
  }
  const problem =
    url.protocol !== 'postgres:' && url.protocol !== 'postgresql:'
      ? `the scheme is ${url.protocol.slice(0, 20)}: write postgres://user@host:port/database`
      : url.hostname === ''
        ? 'no host: write postgres://user@host:port/database'
        : url.pathname.length <= 1
          ? 'no database: write postgres://user@host:port/database'
          : url.search !== ''
            ? 'no ?options in the URL: TLS is store.sslmode and store.ca, the password store.password or store.passwordFile'
            : undefined;
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** Required, with how to make one when it is missing (the store refuses to run without it). */
function keyFileField(baseDir: string) {
  return z
    .string({ error: (iss) => (iss.input === undefined ? `required: a postgres store keeps private keys encrypted with this key; ${HOW_TO_MAKE_KEY_FILE}` : undefined) })
    .min(1, 'keyFile is empty (is its ${VAR} set?)')
    .transform((p) => resolve(baseDir, p))
    .meta({ format: 'path' });
}

function postgresStoreSchema(baseDir: string) {
  return z
    .strictObject({
      type: z.literal('postgres'),
      url: postgresUrl.meta(doc('The database, without password or options (those have their own keys).', 'postgres://certd@db.example.com:5432/certd')),
      password: z.string().min(1, 'password is empty (is its ${VAR} set?)').optional().meta(doc('The password, usually from the environment.', '${CERTD_PG_PASSWORD}')),
      passwordFile: pathField(baseDir).optional().meta(doc('A file holding the password (its trailing newline ignored); instead of password.', '/run/secrets/certd-pg')),
      keyFile: keyFileField(baseDir).meta(
        doc(`The key(s) sealing private keys in the database: one base64 32-byte key per line, the first seals, all open (\`store rotate-key\`). Made with \`${KEY_FILE_RECIPE}\`.`, '/etc/haproxy-certd/store.key'),
      ),
      sslmode: z
        .enum(PG_SSL_MODES)
        .prefault('verify-full')
        .meta(doc('TLS to the server: disable (loopback or a trusted network only), require (encrypted, server not verified), verify-full (encrypted, certificate and host name checked).')),
      ca: pathField(baseDir).optional().meta(doc('CA certificate(s) (PEM) that verify the server with verify-full; the system store otherwise.', '/etc/haproxy-certd/pg-ca.pem')),
      poolSize: wholeNumber('poolSize').prefault(10).meta(doc('Connections per daemon.')),
      connectTimeout: duration({ maxMs: MAX_TIMER_MS }).prefault('10s').meta(doc('How long a connection attempt may take.')),
      queryTimeout: duration({ maxMs: MAX_TIMER_MS }).prefault('10s').meta(doc('How long one statement may take.')),
      replicas: z
        .enum(REPLICA_MODES)
        .prefault('active-standby')
        .meta(
          doc(
            'active-standby: one daemon works, the others wait and take over. active-active: every daemon answers the API and on-demand; each HAProxy instance is written to by one of them (its lease), the cluster-wide work (renewals, sources) runs on one (docs/ha.md).',
            'active-active',
          ),
        ),
      lease: duration({ maxMs: MAX_TIMER_MS })
        .prefault('30s')
        .meta(doc('How long a claim lasts unrefreshed (active-standby: the active daemon\'s; active-active: each instance\'s owner and the cluster-wide work): another daemon takes over within twice this after its holder dies or is cut off. At least 5s.', '10s')),
    })
    .superRefine((s, ctx) => {
      if (s.password !== undefined && s.passwordFile !== undefined) ctx.addIssue({ code: 'custom', path: ['passwordFile'], message: 'give password or passwordFile, not both' });
      if (s.password !== undefined && /^[^/]*\/\/[^/@]*:[^/@]*@/.test(s.url)) ctx.addIssue({ code: 'custom', path: ['password'], message: 'the URL holds a password already: keep one of them' });
      if (s.ca !== undefined && s.sslmode !== 'verify-full') ctx.addIssue({ code: 'custom', path: ['ca'], message: `ca verifies the server, which sslmode ${s.sslmode} does not: use sslmode: verify-full, or remove ca` });
      if (s.lease < MIN_LEASE_MS) ctx.addIssue({ code: 'custom', path: ['lease'], message: 'at least 5s: a shorter lease cannot be refreshed reliably on a loaded machine' });
    })
    .meta(doc('PostgreSQL, shared by several daemons (active-standby or active-active, see replicas and docs/ha.md). Private keys are encrypted with keyFile.'));
}

/** `store:`, chosen by type. */
export function storeSchema(baseDir: string) {
  return z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('fs') }).meta(doc('Files under dataDir: one JSON file per certificate, atomic renames, lock files.')),
    postgresStoreSchema(baseDir),
  ]);
}
