import type { CertBundle } from '../../src/core/bundle.js';
import { makeDeployEntry, type DeployEntry } from '../../src/haproxy/deploy/entry.js';
import { LocalCa, createRoot } from '../../src/issuers/local-ca/index.js';

/** A pre-made leaf: its SNI name and chain + key. */
export interface Leaf {
  name: string;
  bundle: CertBundle;
}

const VALIDITY_MS = 30 * 86_400_000;
/** Key generation runs on libuv's pool; a few in flight keep both cores busy while we sign. */
const IN_FLIGHT = 8;

/**
 * Issues `count` ECDSA P-256 leaves (`<prefix><i>.bench.test`) from a fresh local CA, before any
 * timing starts. About 1 ms per leaf.
 */
export async function makeLeaves(count: number, prefix: string): Promise<Leaf[]> {
  const ca = LocalCa.fromRoot(await createRoot());
  const leaves: Leaf[] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const name = `${prefix}${String(i).padStart(5, '0')}.bench.test`;
      leaves[i] = { name, bundle: await ca.issueLeaf({ names: [name], validityMs: VALIDITY_MS }) };
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return leaves;
}

/** Deploy entries for one instance's certDir (paths differ per instance; built before timing). */
export function entriesFor(certDir: string, leaves: readonly Leaf[]): DeployEntry[] {
  return leaves.map((l) => makeDeployEntry(certDir, { id: l.name, bundle: l.bundle, sni: [l.name] }));
}

