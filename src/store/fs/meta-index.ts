/**
 * The fs store's metadata index: `index/certs.json` holds every certificate file's metadata with
 * the file's stamp (inode, size, mtime and ctime in ns) when it was read. A listing stats each file (no
 * read) and parses only those whose stamp differs or that the index lacks: at 100,000 files a
 * start reads one index file instead of 100,000 certificate files (PEMs and keys included).
 * The index is a cache, never the truth: every entry is checked against its file's stamp before
 * use, files it does not name are read, and names without a file are dropped. So a crash at any
 * moment, an index from before a crash, or another process writing certificate files (a CLI next
 * to the daemon) cannot make a listing wrong, only slower; a corrupt index is reported and rebuilt.
 * Written atomically (temp file, fsync, rename), coalesced, at most every WRITE_DELAY_MS behind the
 * changes, and at close. Not safe for concurrent list() calls on one instance (FsStore serializes).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { coalesced, forEachLimited } from '../../core/async.js';
import { fsErrorCode, writeFileAtomic } from '../../core/atomic-write.js';
import type { CertMeta } from '../store.js';
import { isCertId } from './keys.js';

const FORMAT = 1;
/** How long changes wait to be written with the ones after them (one write for a burst of saves). */
const WRITE_DELAY_MS = 2_000;
/** Stats in flight while validating (each a libuv pool job, no file read). */
const STAT_CONCURRENCY = 64;

interface Entry {
  stamp: string;
  meta: CertMeta;
}

export interface ListOutcome {
  /** Keyed by file name (`<id>.json`): a file holding another id's metadata is the caller's to refuse. */
  entries: { id: string; meta: CertMeta }[];
  /** Files parsed because the index lacked them or their stamp changed. */
  parsed: number;
}

export class CertMetaIndex {
  readonly #path: string;
  readonly #certDir: string;
  readonly #onWarning: (err: Error) => void;
  readonly #delayMs: number;
  /** Undefined until the first list(): saves before it have nothing to keep current. */
  #entries: Map<string, Entry> | undefined;
  #dirty = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #write = coalesced(() => this.#writeNow());

  constructor(o: { path: string; certDir: string; delayMs?: number; onWarning: (err: Error) => void }) {
    this.#delayMs = o.delayMs ?? WRITE_DELAY_MS;
    this.#path = o.path;
    this.#certDir = o.certDir;
    this.#onWarning = o.onWarning;
  }

  /**
   * Metadata of every `<id>.json` in the certificate folder: from the index where the file's stamp
   * matches, else from `parse` (which may return undefined for a file to skip: corrupt, gone).
   */
  async list(parse: (id: string) => Promise<CertMeta | undefined>): Promise<ListOutcome> {
    const known = this.#entries ?? (await this.#read());
    const ids = (await readdir(this.#certDir)).filter((n) => n.endsWith('.json') && isCertId(n.slice(0, -5))).map((n) => n.slice(0, -5));
    const fresh = new Map<string, Entry>();
    let parsed = 0;
    await forEachLimited(ids, STAT_CONCURRENCY, async (id) => {
      const before = await this.#stamp(id);
      if (before === undefined) return;
      const cached = known.get(id);
      // Keyed by the metadata's own id string, not `id`: that one is a slice of its file name,
      // which V8 keeps whole behind it (~90 B a certificate at 100,000).
      if (cached?.stamp === before) {
        fresh.set(cached.meta.id, cached);
        return;
      }
      parsed++;
      const meta = await parse(id);
      // Stamped as it was before the read: a write during the read shows as a changed stamp next time.
      if (meta) fresh.set(meta.id === id ? meta.id : id, { stamp: before, meta });
    });
    const changed = parsed > 0 || fresh.size !== known.size;
    this.#entries = fresh;
    if (changed) this.#schedule();
    return { entries: [...fresh].map(([id, e]) => ({ id, meta: e.meta })), parsed };
  }

  /** A certificate file was written by this process: its entry follows (no-op before the first list). */
  async saved(meta: CertMeta): Promise<void> {
    if (!this.#entries) return;
    const stamp = await this.#stamp(meta.id);
    if (stamp === undefined) this.#entries.delete(meta.id);
    else this.#entries.set(meta.id, { stamp, meta });
    this.#schedule();
  }

  deleted(id: string): void {
    if (this.#entries?.delete(id)) this.#schedule();
  }

  /**
   * Writes what is pending now (store close), and waits for a timer's write still in flight: the
   * store is closed only once no index write can touch its directory (a test's cleanup removing the
   * data directory met such a write: ENOTEMPTY).
   */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#write();
  }

  #schedule(): void {
    this.#dirty = true;
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#write().catch((err: Error) => this.#onWarning(new Error(`could not write the certificate index ${this.#path} (the next start reads the certificate files instead): ${err.message}`, { cause: err })));
    }, this.#delayMs);
    this.#timer.unref();
  }

  async #writeNow(): Promise<void> {
    if (!this.#entries || !this.#dirty) return;
    this.#dirty = false;
    const certs: Record<string, Entry> = {};
    for (const [id, e] of this.#entries) certs[id] = e;
    try {
      await writeFileAtomic(this.#path, JSON.stringify({ format: FORMAT, certs }), { mode: 0o600 });
    } catch (err) {
      this.#dirty = true;
      throw err;
    }
  }

  async #read(): Promise<Map<string, Entry>> {
    let text: string;
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (err) {
      if (fsErrorCode(err) === 'ENOENT') return new Map();
      throw err;
    }
    try {
      const v = JSON.parse(text) as { format?: unknown; certs?: Record<string, Entry> };
      if (v.format !== FORMAT || typeof v.certs !== 'object' || v.certs === null) throw new Error(`not a format-${FORMAT} index`);
      const out = new Map<string, Entry>();
      for (const [id, e] of Object.entries(v.certs)) {
        if (typeof e?.stamp === 'string' && e.meta?.id === id && Array.isArray(e.meta.names)) out.set(id, e);
      }
      return out;
    } catch (err) {
      this.#onWarning(new Error(`the certificate index ${this.#path} is unreadable (${(err as Error).message}): rebuilding it from the certificate files`, { cause: err }));
      return new Map();
    }
  }

  /**
   * `<inode>:<size>:<mtime ns>:<ctime ns>` of a certificate file, undefined when it is gone. Every
   * save is a new inode (a rename), and ctime cannot be set back by hand as mtime can.
   */
  async #stamp(id: string): Promise<string | undefined> {
    try {
      const s = await stat(join(this.#certDir, `${id}.json`), { bigint: true });
      return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
    } catch (err) {
      if (fsErrorCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }
}
