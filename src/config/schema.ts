import { isIP } from 'node:net';
import { z } from 'zod';
import { tryParseHostPort } from '../core/host-port.js';
import { MAX_NAMES_PER_CERT, tryValidateName } from '../core/names.js';
import { duration } from './duration.js';
import { dnsName, doc, hostPortField, nonEmptyList, pathField } from './fields.js';
import { haproxySchema } from './haproxy.js';
import { issuerId, issuerSchema, KEY_TYPES } from './issuers.js';
import { onDemandSchema } from './ondemand.js';
import { sourceSchema } from './sources.js';
import { storeSchema } from './store.js';
import { tlsSchema } from './tls.js';

export { CLIENT_AUTH_MODES, SUPPORTED_TLS_OPTIONS, TLS_VERSIONS, crtListOptionsOf, type TlsOptions } from './tls.js';
export { KEY_TYPES, TSIG_ALGORITHMS } from './issuers.js';

function isLoopback(listen: string): boolean {
  const host = tryParseHostPort(listen)?.host;
  if (host === undefined) return false;
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

const apiSchema = z
  .strictObject({
    listen: hostPortField()
      .prefault('127.0.0.1:9180')
      .meta(doc('Where the HTTP API (CLI, /metrics, /healthz, status page, /ondemand) listens. Off loopback a token is required.', '0.0.0.0:9180')),
    token: z
      .string()
      .min(1, 'token is empty (is its ${VAR} set?): remove the key to run without one, on loopback only')
      .regex(/^[\x21-\x7e]*$/, 'a token is printable ASCII without spaces (it travels in an HTTP header)')
      .optional()
      .meta(doc('The admin token (Bearer). Without one the daemon generates one into `<dataDir>/api-token` (0600), which the CLI reads.', '${CERTD_TOKEN}')),
  })
  .superRefine((api, ctx) => {
    // The API can issue and remove certificates: beyond this host it must ask for a token.
    if (api.token === undefined && !isLoopback(api.listen)) {
      ctx.addIssue({
        code: 'custom',
        path: ['token'],
        message: `listen ${api.listen} is reachable from other hosts: set token (e.g. "\${CERTD_TOKEN}"), or listen on 127.0.0.1`,
      });
    }
  });

function certificateSchema(baseDir: string) {
  return z.strictObject({
    names: nonEmptyList(dnsName({ wildcard: true, ip: true }), 'name (the first is the primary)')
      .max(MAX_NAMES_PER_CERT, `at most ${MAX_NAMES_PER_CERT} names per certificate; split it into several`)
      .transform((names) => [...new Set(names)])
      .meta(doc(`The names (SANs), at most ${MAX_NAMES_PER_CERT}; \`*.x\` wildcards and IP addresses allowed. The first is the primary: it names the certificate.`, ['www.example.com', 'example.com'])),
    issuer: z.string().min(1, 'issuer is empty: name one of the ids under issuers:').meta(doc('The id of the issuer (under issuers) that issues and renews it.', 'le')),
    keyType: z.enum(KEY_TYPES).optional().meta(doc("Overrides the issuer's key type for this certificate.")),
    tls: tlsSchema(baseDir).optional().meta(doc('TLS options for this certificate, written as crt-list options (only those HAProxy takes at runtime).')),
  });
}

/**
 * The whole config (DESIGN §3). Strict everywhere: an unknown key is an error, not ignored, so a
 * typo cannot silently drop a setting. Relative paths resolve against baseDir (the config file's
 * directory); defaults are filled here and nowhere else.
 */
export function configSchema(baseDir: string) {
  return z
    .strictObject({
      dataDir: pathField(baseDir)
        .prefault('./data')
        .meta(doc('The store root: certificates, keys (0600), the local CA, ACME accounts, locks, the generated API token.', '/var/lib/haproxy-certd')),
      store: storeSchema(baseDir).prefault({ type: 'fs' }).meta(doc('Where certificates are kept, chosen by type.')),
      haproxy: haproxySchema(baseDir).meta(doc('The HAProxy instances the daemon pushes to, and the files they load at start.')),
      issuers: z
        .record(issuerId, issuerSchema(baseDir))
        .prefault({})
        .meta(doc('Issuers by id (letters, digits, - and _; "import" is reserved), chosen by type. Without any, a local CA named "internal" is used.', { internal: { type: 'local-ca' } })),
      certificates: z
        .array(certificateSchema(baseDir))
        .prefault([])
        .meta(doc('Certificates the daemon keeps issued, renewed and deployed.', [{ names: ['www.example.com', 'example.com'], issuer: 'le' }])),
      onDemand: onDemandSchema.optional().meta(doc('On-demand TLS: an unknown SNI that policy allows gets a certificate during its first handshake.')),
      sources: z
        .array(sourceSchema(baseDir))
        .prefault([])
        .meta(doc('Certificates made elsewhere, imported as they change (never renewed by certd), chosen by type.')),
      api: apiSchema.prefault({}).meta(doc('The HTTP API.')),
      renewBefore: duration()
        .optional()
        .meta(doc("Renew when this much validity is left. Absent: in the CA's ARI window when it offers one, else at two thirds of the lifetime.", '30d')),
    })
    .superRefine(crossCheck, { when: () => true });
}

export type Config = z.output<ReturnType<typeof configSchema>>;
/** What configFromObject accepts (durations as text or seconds, relative paths, defaults optional). */
export type ConfigInput = z.input<ReturnType<typeof configSchema>>;
export type StoreSpec = Config['store'];
export type PostgresStoreSpec = Extract<StoreSpec, { type: 'postgres' }>;
export type HaproxySpec = Config['haproxy'];
export type HaproxyInstanceSpec = HaproxySpec['instances'][number];
export type IssuerSpec = Config['issuers'][string];
export type LocalCaIssuerSpec = Extract<IssuerSpec, { type: 'local-ca' }>;
export type AcmeIssuerSpec = Extract<IssuerSpec, { type: 'acme' }>;
/** `issuers.<id>.dns`: the single-solver form (rfc2136) or resolver + solvers. */
export type AcmeDnsSpec = NonNullable<AcmeIssuerSpec['dns']>;
export type DnsSolverSpec = NonNullable<AcmeDnsSpec['solvers']>[number];
export type CertificateSpec = Config['certificates'][number];
export type OnDemandSpec = NonNullable<Config['onDemand']>;
export type SourceSpec = Config['sources'][number];
export type DirectorySourceSpec = Extract<SourceSpec, { type: 'directory' }>;
export type HttpSourceSpec = Extract<SourceSpec, { type: 'http' }>;
export type ApiSpec = Config['api'];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Checks that span sections. It runs even when other fields failed (`when`), so one run reports
 * every problem; that is why it reads the half-parsed value defensively instead of trusting types.
 */
function crossCheck(value: unknown, ctx: z.core.$RefinementCtx<unknown>): void {
  if (!isRecord(value)) return;
  const issuers = isRecord(value.issuers) ? value.issuers : {};
  const declared = Object.keys(issuers);
  const undeclared = (id: string) =>
    `issuer ${JSON.stringify(id)} is not declared; ` +
    (declared.length > 0 ? `declared issuers: ${declared.join(', ')}` : 'no issuers are declared: add one under issuers:');

  const owner = new Map<string, number>();
  const certificates = Array.isArray(value.certificates) ? value.certificates : [];
  certificates.forEach((cert: unknown, i) => {
    if (!isRecord(cert)) return;
    const issuerKnown = typeof cert.issuer === 'string' && Object.hasOwn(issuers, cert.issuer);
    if (typeof cert.issuer === 'string' && cert.issuer !== '' && !issuerKnown) {
      ctx.addIssue({ code: 'custom', path: ['certificates', i, 'issuer'], message: undeclared(cert.issuer) });
    }
    const issuer = issuerKnown ? issuers[cert.issuer as string] : undefined;
    const needsDns01 = isRecord(issuer) && issuer.type === 'acme' && issuer.challenge !== 'dns-01';
    const names: unknown[] = Array.isArray(cert.names) ? cert.names : [];
    names.forEach((raw, j) => {
      const name = tryValidateName(raw, { wildcard: true, ip: true });
      if (name === undefined) return;
      const first = owner.get(name);
      if (first !== undefined && first !== i) {
        ctx.addIssue({
          code: 'custom',
          path: ['certificates', i, 'names', j],
          message: `${name} is also in certificates[${first}]: HAProxy serves one certificate per name, so list it once`,
        });
      } else {
        owner.set(name, i);
      }
      if (needsDns01 && name.startsWith('*.')) {
        ctx.addIssue({
          code: 'custom',
          path: ['certificates', i, 'names', j],
          message: `wildcard ${name} needs an ACME issuer with challenge: dns-01; issuer ${JSON.stringify(cert.issuer)} uses http-01`,
        });
      }
    });
  });

  const onDemand = value.onDemand;
  if (isRecord(onDemand) && typeof onDemand.issuer === 'string' && !Object.hasOwn(issuers, onDemand.issuer)) {
    ctx.addIssue({ code: 'custom', path: ['onDemand', 'issuer'], message: undeclared(onDemand.issuer) });
  }
  if (isRecord(onDemand) && (onDemand.forge === true || onDemand.forge === 'true') && typeof onDemand.issuer === 'string') {
    const issuer = issuers[onDemand.issuer];
    if (isRecord(issuer) && issuer.type !== 'local-ca') {
      ctx.addIssue({
        code: 'custom',
        path: ['onDemand', 'forge'],
        message: `forge needs a local-ca issuer (HAProxy signs from its intermediate); issuer ${JSON.stringify(onDemand.issuer)} is ${JSON.stringify(issuer.type)}: set forge: false or use a local-ca issuer`,
      });
    }
  }
}
