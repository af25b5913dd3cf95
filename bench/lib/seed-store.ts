import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { forEachLimited } from '../../src/core/async.js';
import { certFacts } from '../../src/core/bundle.js';
import { EMBEDDED_ISSUER } from '../../src/daemon/issuers.js';
import { LocalCaIssuer } from '../../src/issuers/local-ca/index.js';
import { FsStore } from '../../src/store/fs/fs-store.js';
import type { CertOrigin, StoredCert } from '../../src/store/store.js';
import { seededName } from '../../test/helpers/status-certs.js';

const DAY_MS = 86_400_000;
/** One leaf per day left (2–91): the expiry spread of the listing, from few signatures. */
const LEAVES = 90;
const WRITES_IN_FLIGHT = 32;

/**
 * Stores `count` certificates in `dataDir` fast enough for 100,000: 90 leaves signed by the
 * daemon's own local CA (one per days-left value), and each certificate file written the way
 * FsStore writes one (same JSON, mode 0600) but without its per-file fsync — the bench times the
 * daemon reading the store, not the seeding. Certificate i carries leaf i % 90 (its notAfter,
 * serial and fingerprint in the metadata match that leaf); its id and names are seededName(i),
 * which the leaf's SAN does not hold (nothing here makes a handshake). Every tenth is an import,
 * every tenth+1 from a source, as in test/helpers/status-certs.ts.
 */
export async function seedStoreFast(dataDir: string, count: number): Promise<void> {
  const store = await FsStore.open(dataDir);
  let leaves: { bundle: { certPem: string; keyPem: string }; facts: ReturnType<typeof certFacts> }[];
  try {
    const ca = await new LocalCaIssuer(store, { id: EMBEDDED_ISSUER }).ca();
    leaves = [];
    for (let d = 0; d < LEAVES; d++) {
      const bundle = await ca.issueLeaf({ names: [`leaf${d}.listing.bench`], validityMs: (2 + d) * DAY_MS + 2 * 3_600_000, now: new Date(Date.now() - 3_600_000) });
      leaves.push({ bundle, facts: certFacts(bundle.certPem) });
    }
  } finally {
    await store.close();
  }
  const dir = join(dataDir, 'certs');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const updatedAt = new Date().toISOString();
  await forEachLimited(
    Array.from({ length: count }, (_, i) => i),
    WRITES_IN_FLIGHT,
    async (i) => {
      const origin: CertOrigin = i % 10 === 0 ? 'import' : i % 10 === 1 ? 'source' : 'api';
      const { bundle, facts } = leaves[i % LEAVES]!;
      const id = seededName(i);
      const cert: StoredCert = {
        ...bundle,
        meta: { id, names: [id], issuer: origin === 'import' ? 'import' : EMBEDDED_ISSUER, origin, notBefore: facts.notBefore, notAfter: facts.notAfter, serial: facts.serial, fingerprint: facts.fingerprint, updatedAt },
      };
      const file = { format: 1, meta: cert.meta, certPem: cert.certPem, keyPem: cert.keyPem };
      await writeFile(join(dir, `${id}.json`), `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
    },
  );
}
