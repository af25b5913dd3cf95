import { z } from 'zod';
import { ISSUER_ID_PATTERN, ISSUER_ID_RULE, type KeyType } from '../issuers/issuer.js';
import { duration } from './duration.js';
import { hostPortField, httpUrl, pathField } from './fields.js';

export const KEY_TYPES = ['ecdsa-p256', 'rsa-2048'] as const satisfies readonly KeyType[];
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
      keyType: z.enum(KEY_TYPES).default('ecdsa-p256'),
      validity: duration().prefault('30d'),
      /** An existing root to sign with; without both, `ca init` creates one in dataDir. */
      rootCert: pathField(baseDir).optional(),
      rootKey: pathField(baseDir).optional(),
    })
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
  server: hostPortField(53),
  zone: dnsDomain('zone'),
  tsig: z.strictObject({
    name: dnsDomain('tsig.name'),
    algorithm: z.enum(TSIG_ALGORITHMS),
    secret: base64('tsig.secret'),
  }),
});

function acmeSchema(baseDir: string) {
  return z
    .strictObject({
      type: z.literal('acme'),
      directory: httpUrl(),
      email: z
        .string()
        .regex(/^[^\s@<>()[\\\],;:"]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+$/, 'expected an e-mail address like ops@example.com')
        .optional(),
      challenge: z.enum(['http-01', 'dns-01']).default('http-01'),
      /** Key type of certificates from this issuer unless a certificate says otherwise. */
      keyType: z.enum(KEY_TYPES).default('ecdsa-p256'),
      profile: z
        .string()
        .regex(/^[A-Za-z0-9._-]{1,64}$/, 'a profile name is letters, digits, . _ - (e.g. tlsserver, shortlived)')
        .optional(),
      eab: z.strictObject({ kid: z.string().min(1, 'eab.kid is empty'), hmacKey: base64('eab.hmacKey') }).optional(),
      /** Trust for the ACME server's own TLS (Pebble, private CAs); the system store otherwise. */
      caBundle: pathField(baseDir).optional(),
      /** Common name of the root/intermediate to prefer among alternate chains. */
      preferredChain: z.string().min(1, 'preferredChain is empty').optional(),
      dns: z.strictObject({ rfc2136: rfc2136Schema }).optional(),
    })
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
