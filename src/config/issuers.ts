import { z } from 'zod';
import { KEY_TYPES } from '../crypto/keys.js';
import { ISSUER_ID_PATTERN, ISSUER_ID_RULE } from '../issuers/issuer.js';
import { duration, MAX_TIMER_MS } from './duration.js';
import { doc, flag, hostPortField, httpUrl, nonEmptyList, pathField, wholeNumber } from './fields.js';

export { KEY_TYPES };
export const TSIG_ALGORITHMS = ['hmac-sha256', 'hmac-sha512'] as const;

/** "import" is what the store records as the issuer of imported certificates. */
const RESERVED_ISSUER_IDS = new Set(['import']);

/** The key of an entry under `issuers:`. */
export const issuerId = z.string().regex(ISSUER_ID_PATTERN, ISSUER_ID_RULE).refine(
  (id) => !RESERVED_ISSUER_IDS.has(id),
  '"import" is reserved for imported certificates; choose another issuer id',
);

const base64 = (what: string) =>
  z.string().regex(/^[A-Za-z0-9+/_-]+={0,2}$/, `${what} must be base64 (or base64url) text`);

/*
 * DNS-01 zones are often delegated `_acme-challenge.` zones and TSIG key names often carry `_`,
 * so these are checked as DNS names, not as the stricter host names certificates need.
 */
const dnsDomain = (what: string) =>
  z
    .string()
    .regex(/^(?=.{1,254}$)([A-Za-z0-9_-]{1,63}\.)*[A-Za-z0-9_-]{1,63}\.?$/, `${what} must be a DNS name like example.com.`)
    .transform((name) => name.toLowerCase().replace(/\.$/, ''));

function localCaSchema(baseDir: string) {
  return z
    .strictObject({
      type: z.literal('local-ca'),
      keyType: z.enum(KEY_TYPES).default('ecdsa-p256').meta(doc('Key type of the certificates it signs.')),
      validity: duration().prefault('30d').meta(doc('Lifetime of the certificates it signs.', '90d')),
      rootCert: pathField(baseDir)
        .optional()
        .meta(doc('An existing root (PEM) to sign with, with rootKey; without both, a root is created in dataDir (`ca init`).', './ca/root.pem')),
      rootKey: pathField(baseDir).optional().meta(doc("The root's private key (PEM).", './ca/root.key')),
    })
    .meta(doc('A local CA for internal names: signs in-process, no network.'))
    .superRefine((ca, ctx) => {
      if ((ca.rootCert === undefined) !== (ca.rootKey === undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: [ca.rootCert === undefined ? 'rootCert' : 'rootKey'],
          message: 'rootCert and rootKey go together: give both, or neither to let certd create a root',
        });
      }
    });
}

const rfc2136Schema = z.strictObject({
  server: hostPortField(53).meta(doc('The DNS server that takes signed updates for the zone (port 53 by default).', '10.0.0.53:53')),
  zone: dnsDomain('zone').meta(doc('The zone the `_acme-challenge` TXT records are written in (often a delegated one).', 'example.com.')),
  tsig: z
    .strictObject({
      name: dnsDomain('tsig.name').meta(doc("The TSIG key's name, as the server knows it.", 'certd.')),
      algorithm: z.enum(TSIG_ALGORITHMS).meta(doc('The TSIG algorithm.')),
      secret: base64('tsig.secret').meta(doc('The shared secret, base64 (use ${VAR}).', '${TSIG_SECRET}')),
    })
    .meta(doc('The key every update is signed with (RFC 8945); unsigned answers are refused.')),
});

const execSchema = z.strictObject({
  command: nonEmptyList(z.string().min(1, 'a command word is empty'), 'command word (the program first)').meta(
    doc('The hook, run as `<command…> present|cleanup <fqdn> <value>` (lego\'s exec protocol), without a shell.', ['/usr/local/bin/dns-hook']),
  ),
  timeout: duration({ maxMs: MAX_TIMER_MS })
    .prefault('60s')
    .meta(doc('How long one call may run; then its process group is killed and the authorization fails.', '2m')),
});

/** `false` is the short form of `{ enabled: false }`. */
const propagationSchema = z.preprocess(
  (v) => (v === false || v === 'false' ? { enabled: false } : v),
  z.strictObject({
    enabled: flag().default(true).meta(doc('`propagation: false` turns the check off (the CA is told to validate at once).')),
    servers: z
      .array(hostPortField(53))
      .min(1, 'list at least one server, or leave servers out to ask the zone\'s NS')
      .optional()
      .meta(doc("The servers to ask; default: the zone's NS records (through dns.resolver).", ['10.0.0.53:53'])),
    timeout: duration({ maxMs: MAX_TIMER_MS }).prefault('2m').meta(doc('How long to wait for every server to serve the record.', '5m')),
    interval: duration({ maxMs: MAX_TIMER_MS }).prefault('2s').meta(doc('Between two rounds of queries.', '1s')),
  }),
);

const solverSchema = z
  .strictObject({
    zones: nonEmptyList(dnsDomain('zone'), 'zone').meta(
      doc('The zones this solver writes in; the longest one matching the name (or its CNAME target) wins.', ['example.com']),
    ),
    rfc2136: rfc2136Schema.optional().meta(doc('RFC 2136 dynamic updates (TSIG-signed).')),
    exec: execSchema.optional().meta(doc('A hook program for any DNS provider.')),
    propagation: propagationSchema
      .prefault({})
      .meta(doc('Wait until every authoritative server serves the record before the CA is told to validate; `false`: off.')),
  })
  .superRefine((solver, ctx) => {
    if ((solver.rfc2136 === undefined) === (solver.exec === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'a solver has exactly one of rfc2136: { server, zone, tsig } or exec: { command }' });
    }
    const zone = solver.rfc2136?.zone;
    if (zone === undefined) return;
    solver.zones.forEach((z, i) => {
      if (z !== zone && !z.endsWith(`.${zone}`)) {
        ctx.addIssue({ code: 'custom', path: ['zones', i], message: `${z} is not inside rfc2136.zone ${zone}: the server cannot write records there` });
      }
    });
  });

const dnsSchema = z
  .strictObject({
    resolver: hostPortField(53).optional().meta(doc("Where CNAMEs and NS records are looked up (default: the system's first nameserver).", '10.0.0.53:53')),
    solvers: nonEmptyList(solverSchema, 'solver').optional().meta(doc('DNS-01 solvers, each for its zones.')),
    rfc2136: rfc2136Schema
      .optional()
      .meta(doc('The single-solver form: one RFC 2136 server for its zone (checked at that server only). Use solvers for more.')),
  })
  .superRefine((dns, ctx) => {
    if ((dns.rfc2136 === undefined) === (dns.solvers === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'dns needs solvers: [ { zones, rfc2136 | exec } ] (or the single-solver form rfc2136: { … }), not both' });
    }
    if (dns.rfc2136 !== undefined && dns.resolver !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['resolver'],
        message: 'resolver goes with solvers (the single-solver form follows no CNAMEs): write solvers: [ { zones: [<zone>], rfc2136: { … } } ]',
      });
    }
    const owner = new Map<string, number>();
    dns.solvers?.forEach((solver, i) =>
      solver.zones.forEach((zone, j) => {
        const first = owner.get(zone);
        if (first === undefined) owner.set(zone, i);
        else ctx.addIssue({ code: 'custom', path: ['solvers', i, 'zones', j], message: `zone ${zone} is also in solvers[${first}]: each zone has one solver` });
      }),
    );
  });

/** Scheduled renewals never place more than `orders` new orders in any `per`; due ones beyond it wait, soonest-expiring first. */
const rateLimitSchema = z.strictObject({
  orders: wholeNumber('rateLimit.orders').default(240).meta(doc('New orders allowed in any window of `per` (sliding, not per calendar hour); default 240, under Let\'s Encrypt\'s 300.', 300)),
  per: duration({ maxMs: MAX_TIMER_MS }).prefault('3h').meta(doc('The window length.', '1h')),
  ariExempt: flag()
    .default(true)
    .meta(doc("Renewals inside the CA's ARI window (sent with `replaces`) are not counted, as Let's Encrypt does not count them; default true.")),
});

function acmeSchema(baseDir: string) {
  return z
    .strictObject({
      type: z.literal('acme'),
      directory: httpUrl().meta(doc("The CA's ACME directory URL.", 'https://acme-v02.api.letsencrypt.org/directory')),
      email: z
        .string()
        .regex(/^[^\s@<>()[\\\],;:"]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+$/, 'expected an e-mail address like ops@example.com')
        .optional()
        .meta(doc('Contact address of the ACME account.', 'ops@example.com')),
      challenge: z
        .enum(['http-01', 'dns-01'])
        .default('http-01')
        .meta(doc('http-01: HAProxy answers from acme.map (`haproxy-config` prints the frontend); dns-01: TXT records through the dns solvers.')),
      keyType: z.enum(KEY_TYPES).default('ecdsa-p256').meta(doc('Key type of certificates from this issuer unless a certificate says otherwise.')),
      profile: z
        .string()
        .regex(/^[A-Za-z0-9._-]{1,64}$/, 'a profile name is letters, digits, . _ - (e.g. tlsserver, shortlived)')
        .optional()
        .meta(doc('A certificate profile the CA offers in its directory.', 'tlsserver')),
      eab: z
        .strictObject({
          kid: z.string().min(1, 'eab.kid is empty').meta(doc('The key identifier the CA gave you.')),
          hmacKey: base64('eab.hmacKey').meta(doc('The MAC key the CA gave you, base64url (use ${VAR}).', '${EAB_HMAC_KEY}')),
        })
        .optional()
        .meta(doc('External account binding, for CAs that require one.')),
      caBundle: pathField(baseDir)
        .optional()
        .meta(doc("Trust for the ACME server's own TLS (Pebble, private CAs); the system store otherwise.", './pebble-ca.pem')),
      preferredChain: z
        .string()
        .min(1, 'preferredChain is empty')
        .optional()
        .meta(doc('Common name of the root or intermediate to prefer among alternate chains.', 'ISRG Root X1')),
      dns: dnsSchema.optional().meta(doc('How dns-01 challenges are answered (required with challenge: dns-01).')),
      rateLimit: rateLimitSchema
        .prefault({})
        .meta(doc("The scheduler's budget of new orders at this CA, kept below the CA's own limit (Let's Encrypt: 300 per account per 3 h).")),
    })
    .meta(doc('An ACME CA (RFC 8555): Let\'s Encrypt, its staging, Pebble, any other.'))
    .superRefine((acme, ctx) => {
      if (acme.challenge === 'dns-01' && acme.dns === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['dns'],
          message: 'challenge: dns-01 needs dns: { solvers: [ { zones: [example.com], rfc2136: { server, zone, tsig } } ] } (or an exec hook)',
        });
      }
    });
}

/** One entry under `issuers:`, chosen by `type`. Relative paths resolve against baseDir. */
export function issuerSchema(baseDir: string) {
  return z.discriminatedUnion('type', [localCaSchema(baseDir), acmeSchema(baseDir)]);
}
