import { z } from 'zod';
import { KEY_TYPES } from '../crypto/keys.js';
import { ISSUER_ID_PATTERN, ISSUER_ID_RULE } from '../issuers/issuer.js';
import { duration } from './duration.js';
import { doc, hostPortField, httpUrl, pathField } from './fields.js';

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
        .meta(doc('http-01: HAProxy answers from acme.map (`haproxy-config` prints the frontend); dns-01: TXT records through dns.rfc2136.')),
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
      dns: z
        .strictObject({ rfc2136: rfc2136Schema.meta(doc('RFC 2136 dynamic updates.')) })
        .optional()
        .meta(doc('How dns-01 challenges are answered (required with challenge: dns-01).')),
    })
    .meta(doc('An ACME CA (RFC 8555): Let\'s Encrypt, its staging, Pebble, any other.'))
    .superRefine((acme, ctx) => {
      if (acme.challenge === 'dns-01' && acme.dns === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['dns'],
          message: 'challenge: dns-01 needs dns: { rfc2136: { server, zone, tsig: { name, algorithm, secret } } }',
        });
      }
    });
}

/** One entry under `issuers:`, chosen by `type`. Relative paths resolve against baseDir. */
export function issuerSchema(baseDir: string) {
  return z.discriminatedUnion('type', [localCaSchema(baseDir), acmeSchema(baseDir)]);
}
