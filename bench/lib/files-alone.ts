import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { DeployEntry } from '../../src/haproxy/deploy/entry.js';
import { DeployFiles } from '../../src/haproxy/deploy/files.js';

export interface FilesAloneResult {
  /** All PEMs, then the crt-list: the file half of a bulk upsert. */
  bulkMs: number;
  /** One PEM, then the crt-list of everything so far: the file half of a one-certificate upsert. */
  singleMs: number[];
}

/**
 * Times DeployFiles on its own — the same writes a deploy makes (atomic, fsynced), in a scratch
 * directory on the same file system, no HAProxy involved — so the file share of a deploy is known
 * however the deployer orders or overlaps files and runtime commands.
 */
export async function timeFilesAlone(defaultEntry: DeployEntry, bulk: DeployEntry[], singles: DeployEntry[]): Promise<FilesAloneResult> {
  const dir = await mkdtemp(join(tmpdir(), 'certd-bench-files-'));
  try {
    const files = new DeployFiles(dir, join(dir, 'crt-list.txt'));
    await files.prepare();
    const moved = (e: DeployEntry): DeployEntry => ({ ...e, pemPath: join(dir, basename(e.pemPath)) });
    const list = [moved(defaultEntry)];
    await files.writeEntries(list);
    const entries = bulk.map(moved);
    const t0 = performance.now();
    await files.writeEntries(entries);
    list.push(...entries);
    await files.writeCrtList(list);
    const bulkMs = performance.now() - t0;
    const singleMs: number[] = [];
    for (const s of singles.map(moved)) {
      const s0 = performance.now();
      await files.writeEntries([s]);
      list.push(s);
      await files.writeCrtList(list);
      singleMs.push(performance.now() - s0);
    }
    return { bulkMs, singleMs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
