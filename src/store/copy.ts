import { forEachLimited } from '../core/async.js';
import type { CertMeta, Store } from './store.js';

/** What `store migrate` did, per record kind. */
export interface CopyReport {
  certs: { copied: number; same: number; keptNewer: string[] };
  pending: number;
  dnsRecords: number;
  blobs: { copied: number; same: number; keptTarget: string[] };
}

/** Writes in flight at once: a few round trips overlap, the pool is not drained. */
const PARALLEL = 8;

/**
 * Copies every record of `from` into `to` without issuing anything: certificates (bundle, key,
 * meta as they are, so the same serials are served), pending intents, DNS-01 records, and the
 * named blobs (local CA, ACME accounts, the default certificate). Idempotent: a certificate the
 * target holds already with the same fingerprint is left alone, one it holds with a later
 * notAfter (renewed there since) is kept, and a blob the target holds with other content is
 * kept (a second local CA root would change what clients must trust). Every blob is written
 * secret: the source does not record which are, and a sealed public blob costs nothing.
 */
export async function copyStore(from: Store, to: Store, blobKeys: readonly string[]): Promise<CopyReport> {
  const report: CopyReport = { certs: { copied: 0, same: 0, keptNewer: [] }, pending: 0, dnsRecords: 0, blobs: { copied: 0, same: 0, keptTarget: [] } };
  const there = new Map<string, CertMeta>((await to.listCerts()).map((m) => [m.id, m]));
  await forEachLimited(await from.listCerts(), PARALLEL, async (meta) => {
    const have = there.get(meta.id);
    if (have?.fingerprint === meta.fingerprint) return void report.certs.same++;
    if (have && have.notAfter > meta.notAfter) return void report.certs.keptNewer.push(meta.id);
    const cert = await from.loadCert(meta.id);
    if (!cert) return; // removed from the source meanwhile
    await to.saveCert(cert);
    report.certs.copied++;
  });
  for (const p of await from.listPending()) {
    await to.putPending(p);
    report.pending++;
  }
  for (const r of await from.listDnsRecords()) {
    await to.putDnsRecord(r);
    report.dnsRecords++;
  }
  for (const key of blobKeys) {
    const data = await from.getBlob(key);
    if (!data) continue;
    const have = await to.getBlob(key);
    if (have?.equals(data)) report.blobs.same++;
    else if (have) report.blobs.keptTarget.push(key);
    else {
      await to.putBlob(key, data, { secret: true });
      report.blobs.copied++;
    }
  }
  report.certs.keptNewer.sort();
  return report;
}

/** The blob keys of an fs store (the source of `store migrate --from fs`). */
export { fsBlobKeys } from './fs/fs-storage.js';
