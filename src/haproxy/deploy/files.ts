import { mkdir, readFile } from 'node:fs/promises';
import { dirname, relative } from 'node:path';
import { forEachLimited } from '../../core/async.js';
import { removeFileDurable, removeLeftoverFiles, syncDir, writeFileAtomic } from '../../core/atomic-write.js';
import { ONDEMAND_LUA } from '../assets/ondemand-lua.js';
import { certDirLayout } from '../cert-dir.js';
import { crtListLine, type CertEntry, type DeployEntry } from './entry.js';

/** How many PEM files are written at once: fsyncs overlap, the disk queue stays short. */
const WRITE_CONCURRENCY = 16;

/**
 * The on-disk half of a deploy: PEM files (0600), client-CA files, the crt-list, the maps and the
 * on-demand Lua action, all written atomically, so an HAProxy that (re)starts at any moment reads a complete, consistent set.
 * Not safe for concurrent calls: the Deployer serializes them.
 */
export class DeployFiles {
  constructor(
    readonly certDir: string,
    readonly crtListPath: string,
  ) {}

  /**
   * Makes the directories and removes every temp file a killed daemon left in them (PEMs with
   * keys among them): the daemon is their only writer, and it has written nothing yet. With
   * `olderThanMs`, only those older (replicas sharing the directory write there meanwhile).
   */
  async prepare(onWarning?: (err: Error) => void, o: { olderThanMs?: number } = {}): Promise<number> {
    await mkdir(certDirLayout(this.certDir).clientCaDir, { recursive: true, mode: 0o700 });
    await mkdir(dirname(this.crtListPath), { recursive: true });
    const olderThanMs = o.olderThanMs ?? 0;
    let removed = await removeLeftoverFiles(this.certDir, { olderThanMs, onWarning });
    const listDir = dirname(this.crtListPath);
    if (relative(this.certDir, listDir).startsWith('..')) removed += await removeLeftoverFiles(listDir, { olderThanMs, onWarning });
    return removed;
  }

  /**
   * Writes the PEMs (and client-CA files); resolves once all are durable. One directory fsync per
   * directory after the last rename instead of one per file: the crt-list naming them is written
   * only after this resolves. With `skipUnchanged`, a file that already holds exactly this
   * content is left alone (a start with 100,000 stored reads them instead of fsyncing each again).
   */
  async writeEntries(entries: DeployEntry[], o: { skipUnchanged?: boolean } = {}): Promise<void> {
    const dirs = new Set<string>();
    const write = async (path: string, data: string, mode: number) => {
      if (o.skipUnchanged && (await readIfExists(path)) === data) return;
      await writeFileAtomic(path, data, { mode, syncDir: false });
      dirs.add(dirname(path));
    };
    await forEachLimited(entries, WRITE_CONCURRENCY, async (e) => {
      if (e.caFile) await write(e.caFile.path, e.caFile.pem, 0o644);
      await write(e.pemPath, e.pem, 0o600);
    });
    await Promise.all([...dirs].map(syncDir));
  }

  /** A certificate's PEM as written (chain + key), for a push after it left memory. */
  readPem(e: CertEntry): Promise<string> {
    return readFile(e.pemPath, 'utf8');
  }

  async removeEntries(entries: CertEntry[]): Promise<void> {
    await forEachLimited(entries, WRITE_CONCURRENCY, async (e) => {
      await removeFileDurable(e.pemPath);
      if (e.caFile) await removeFileDurable(e.caFile.path);
    });
  }

  /** Rewrites the crt-list: `entries` in order, the default certificate first. */
  async writeCrtList(entries: Iterable<CertEntry>): Promise<void> {
    const lines = ['# written by haproxy-certd: edits are overwritten'];
    for (const e of entries) lines.push(crtListLine(e));
    await writeFileAtomic(this.crtListPath, `${lines.join('\n')}\n`, { mode: 0o644 });
  }

  /** Where the on-demand Lua action is (haproxy.cfg `lua-load`s it). */
  get luaPath(): string {
    return certDirLayout(this.certDir).luaFile;
  }

  /** Writes the on-demand Lua action of this version: HAProxy lua-loads it at start, so before any instance is expected up. */
  async writeLuaAction(): Promise<void> {
    await mkdir(this.certDir, { recursive: true });
    await writeFileAtomic(this.luaPath, ONDEMAND_LUA, { mode: 0o644 });
  }

  /** Rewrites a map file: one `key value` per line (HAProxy's map format). */
  async writeMap(path: string, entries: ReadonlyMap<string, string>): Promise<void> {
    let text = '# written by haproxy-certd: edits are overwritten\n';
    for (const [k, v] of entries) text += `${k} ${v}\n`;
    await writeFileAtomic(path, text, { mode: 0o644 });
  }
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
