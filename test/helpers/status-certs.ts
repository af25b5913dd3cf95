import { certFacts } from '../../src/core/bundle.js';
import { EMBEDDED_ISSUER } from '../../src/daemon/issuers.js';
import { LocalCaIssuer } from '../../src/issuers/local-ca/index.js';
import { FsStore } from '../../src/store/fs/fs-store.js';
import type { CertOrigin } from '../../src/store/store.js';

const DAY_MS = 86_400_000;
const VALIDITY_DAYS = 90;
/** Key generation runs on libuv's pool: a few leaves in flight keep both cores busy. */
const IN_FLIGHT = 8;

/** The name of the i-th seeded certificate: `c00042.fleet.test`. */
export function seededName(i: number): string {
  return `c${String(i).padStart(5, '0')}.fleet.test`;
}

/**
 * Stores `count` certificates signed by the daemon's own local CA straight into the store of
 * `dataDir` (before a daemon starts on it): far quicker than one API call each. Days left spread
 * over 2–89 for certd's own ('api'), each issued an hour ago (so none is due for renewal while a
 * test or bench looks); every tenth is imported and every tenth+1 from a source, 90-day ones
 * reaching back to expired (the scheduler does not renew those).
 */
export async function seedCerts(dataDir: string, count: number): Promise<void> {
  const store = await FsStore.open(dataDir);
  try {
    const ca = await new LocalCaIssuer(store, { id: EMBEDDED_ISSUER }).ca();
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const i = next++;
        const origin: CertOrigin = i % 10 === 0 ? 'import' : i % 10 === 1 ? 'source' : 'api';
        const daysLeft = origin === 'api' ? 2 + (i % 88) : -3 + (i % 93);
        const name = seededName(i);
        const leaf =
          origin === 'api'
            ? { validityMs: daysLeft * DAY_MS + 2 * 3_600_000, now: new Date(Date.now() - 3_600_000) }
            : { validityMs: VALIDITY_DAYS * DAY_MS, now: new Date(Date.now() - (VALIDITY_DAYS - daysLeft) * DAY_MS + 3_600_000) };
        const bundle = await ca.issueLeaf({ names: [name], ...leaf });
        const facts = certFacts(bundle.certPem);
        await store.saveCert({
          ...bundle,
          meta: {
            id: name,
            names: [name],
            issuer: origin === 'import' ? 'import' : EMBEDDED_ISSUER,
            origin,
            notBefore: facts.notBefore,
            notAfter: facts.notAfter,
            serial: facts.serial,
            fingerprint: facts.fingerprint,
            updatedAt: new Date().toISOString(),
          },
        });
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  } finally {
    await store.close();
  }
}
