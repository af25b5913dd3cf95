import { readFile } from 'node:fs/promises';
import type { Config } from '../config/schema.js';
import { ConfigError } from '../core/errors.js';
import type { Issuer } from '../issuers/issuer.js';
import { initLocalCa, LocalCaIssuer } from '../issuers/local-ca/index.js';
import type { Store } from '../store/store.js';

/** The issuer every embedded-defaults setup gets (demo, a config with no issuers). */
export const EMBEDDED_ISSUER = 'internal';

/**
 * Builds the configured issuers; with none configured, a local CA named "internal". A supplied
 * root (rootCert/rootKey) is stored on first use. Issuer kinds this build does not have yet are a
 * config error, not a silent skip.
 */
export async function createIssuers(config: Config, store: Store): Promise<Map<string, Issuer>> {
  const issuers = new Map<string, Issuer>();
  const specs = Object.keys(config.issuers).length > 0 ? config.issuers : { [EMBEDDED_ISSUER]: { type: 'local-ca' as const } };
  for (const [id, spec] of Object.entries(specs)) {
    if (spec.type !== 'local-ca') {
      throw new ConfigError(`issuers.${id}: type "${spec.type}" is not available in this build yet; use type: local-ca`);
    }
    const full = spec as Partial<Extract<Config['issuers'][string], { type: 'local-ca' }>>;
    if (full.rootCert && full.rootKey && !(await store.getBlob(`local-ca/${id}/root.pem`))) {
      const [certPem, keyPem] = await Promise.all([readFile(full.rootCert, 'utf8'), readFile(full.rootKey, 'utf8')]);
      await initLocalCa(store, id, { certPem, keyPem });
    }
    issuers.set(id, new LocalCaIssuer(store, { id, keyType: full.keyType, validityMs: full.validity }));
  }
  return issuers;
}

/** The issuer used when a request names none: "internal" if present, else the first configured. */
export function defaultIssuerId(issuers: ReadonlyMap<string, Issuer>): string {
  return issuers.has(EMBEDDED_ISSUER) ? EMBEDDED_ISSUER : issuers.keys().next().value!;
}
