import { readFile } from 'node:fs/promises';
import type { Config } from '../config/schema.js';
import { CertdError, ConfigError } from '../core/errors.js';
import { dns01FromConfig } from '../challenges/dns-01/from-config.js';
import type { Http01Solver } from '../issuers/acme/issuer.js';
import { AcmeIssuer } from '../issuers/acme/index.js';
import type { Issuer } from '../issuers/issuer.js';
import { initLocalCa, LocalCaIssuer } from '../issuers/local-ca/index.js';
import type { Store } from '../store/store.js';

/** The issuer every embedded-defaults setup gets (demo, a config with no issuers). */
export { EMBEDDED_ISSUER } from './issuer-ids.js';
import { EMBEDDED_ISSUER } from './issuer-ids.js';

type IssuerSpec = Config['issuers'][string];

/** Without a running daemon there is no HAProxy to publish an HTTP-01 token in. */
const offlineHttp01: Http01Solver = {
  present: async () => {
    throw new CertdError('CERTD_E_HTTP01_NEEDS_DAEMON', 'HTTP-01 publishes the token through HAProxy: start `haproxy-certd run` and retry', { category: 'unavailable' });
  },
  cleanup: async () => undefined,
};

/**
 * Builds the configured issuers; with none configured, a local CA named "internal". A supplied
 * root (rootCert/rootKey) is stored on first use. `http01` publishes HTTP-01 tokens (the daemon
 * passes its HAProxy map solver; the CLI without a daemon has none).
 */
export async function createIssuers(config: Config, store: Store, http01: Http01Solver = offlineHttp01): Promise<Map<string, Issuer>> {
  const issuers = new Map<string, Issuer>();
  const specs: Record<string, IssuerSpec> =
    Object.keys(config.issuers).length > 0 ? config.issuers : { [EMBEDDED_ISSUER]: { type: 'local-ca', keyType: 'ecdsa-p256', validity: 30 * 86_400_000 } };
  for (const [id, spec] of Object.entries(specs)) {
    issuers.set(id, spec.type === 'local-ca' ? await localCa(id, spec, store) : await acme(id, spec, store, http01));
  }
  return issuers;
}

async function localCa(id: string, spec: Extract<IssuerSpec, { type: 'local-ca' }>, store: Store): Promise<Issuer> {
  if (spec.rootCert && spec.rootKey && !(await store.getBlob(`local-ca/${id}/root.pem`))) {
    const [certPem, keyPem] = await Promise.all([readFile(spec.rootCert, 'utf8'), readFile(spec.rootKey, 'utf8')]);
    await initLocalCa(store, id, { certPem, keyPem });
  }
  return new LocalCaIssuer(store, { id, keyType: spec.keyType, validityMs: spec.validity });
}

async function acme(id: string, spec: Extract<IssuerSpec, { type: 'acme' }>, store: Store, http01: Http01Solver): Promise<Issuer> {
  if (spec.challenge === 'dns-01' && !spec.dns) throw new ConfigError(`issuers.${id}: challenge dns-01 needs dns.solvers`);
  return new AcmeIssuer({
    id,
    directory: spec.directory,
    email: spec.email,
    eab: spec.eab,
    caBundle: spec.caBundle ? await readFile(spec.caBundle, 'utf8') : undefined,
    profile: spec.profile,
    preferredChain: spec.preferredChain,
    keyType: spec.keyType,
    challenge: spec.challenge,
    solvers: {
      'http-01': http01,
      'dns-01': spec.dns ? dns01FromConfig(id, spec.dns, store) : undefined,
    },
    store,
  });
}

/** The issuer used when a request names none: "internal" if present, else the first configured. */
export function defaultIssuerId(issuers: ReadonlyMap<string, Issuer>): string {
  return issuers.has(EMBEDDED_ISSUER) ? EMBEDDED_ISSUER : issuers.keys().next().value!;
}
