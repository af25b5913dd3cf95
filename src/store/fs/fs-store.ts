import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { forEachLimited, SerialQueue } from '../../core/async.js';
import { ensureDir, fsErrorCode, removeFileDurable, removeLeftoverFiles, writeFileAtomic } from '../../core/atomic-write.js';
import { StoreCorruptError, StoreLockedError } from '../../core/errors.js';
import type { CertMeta, DnsRecordEntry, Lock, LockOptions, PendingIssue, Store, StoredCert } from '../store.js';
import { acquireFileLock, describeOwner, FileLock, isBreakTokenName, removeStaleLocks, tryAcquireFileLock } from './file-lock.js';
import { checkCertId, checkStoreKey, isCertId } from './keys.js';
import { CertMetaIndex } from './meta-index.js';

export interface FsStoreOptions {
  /**
   * Told about problems that do not fail the call: a corrupt file skipped by a list, a leftover
   * that could not be cleaned, a lock lost to a takeover. Default: process.emitWarning.
   */
  onWarning?: (err: Error) => void;
  /** How long index changes wait to be written together (default 2 s; see meta-index.ts). */
  indexDelayMs?: number;
}

/** Version of the certificate and pending file formats, so a later layout can read old files. */
const FORMAT = 1;
/**
 * Leftover temp files older than this are removed on open. Younger ones may belong to a live
 * writer in another process sharing the data directory (a CLI next to the daemon); removing those
 * would fail its rename. They are ignored by lists either way.
 */
const LEFTOVER_AGE_MS = 60_000;
/** How often the daemon holding the store sweeps leftovers (so none lives much past LEFTOVER_AGE_MS). */
const SWEEP_EVERY_MS = 15_000;
const SUBDIRS = ['certs', 'pending', 'blobs', 'locks', 'dns-records', 'index'];
/** Held by a running daemon for its whole life (one daemon per dataDir). */
const DAEMON_LOCK = 'daemon';
/** Bounds open files while listing thousands of certificates. */
const READ_CONCURRENCY = 16;

const CERT_META_STRINGS = ['id', 'issuer', 'origin', 'notBefore', 'notAfter', 'serial', 'fingerprint', 'updatedAt'] as const;

/**
 * Store on a local (or shared POSIX) file system under `dataDir`:
 * `certs/<id>.json` (cert, key and meta in one file, 0600), `pending/<id>.json`, `blobs/<key>`,
 * `locks/<key>.lock`, `dns-records/<id>.json`, `index/certs.json` (the metadata index, see
 * meta-index.ts); directories 0700.
 * Every method is safe to call concurrently, from this process and from other processes using the
 * same directory: writes are atomic renames, locks are O_EXCL files with a lease.
 */
export class FsStore implements Store {
  readonly dataDir: string;
  readonly #onWarning: (err: Error) => void;
  readonly #locks = new Set<FileLock>();
  /** Lock directories known to exist. */
  readonly #lockDirs = new Set<string>();
  readonly #lockHooks = {
    onWarning: (err: Error) => this.#onWarning(err),
    onReleased: (lock: FileLock) => this.#locks.delete(lock),
  };
  readonly #index: CertMetaIndex;
  /** list() calls one after the other: the index is validated by one at a time. */
  readonly #listing = new SerialQueue();
  #ready: Promise<void> | undefined;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(dataDir: string, opts: FsStoreOptions = {}) {
    this.dataDir = resolve(dataDir);
    this.#onWarning = opts.onWarning ?? ((err) => process.emitWarning(err));
    this.#index = new CertMetaIndex({ path: join(this.dataDir, 'index', 'certs.json'), certDir: join(this.dataDir, 'certs'), delayMs: opts.indexDelayMs, onWarning: (err) => this.#onWarning(err) });
  }

  /** Creates a store and prepares its directories (also done lazily by the first call). */
  static async open(dataDir: string, opts: FsStoreOptions = {}): Promise<FsStore> {
    const store = new FsStore(dataDir, opts);
    await store.#init();
    return store;
  }

  async loadCert(id: string): Promise<StoredCert | undefined> {
    const path = this.#certPath(id);
    await this.#init();
    // "None" is answered with one synchronous stat (~10 µs): through the libuv pool the same
    // answer queued behind other writes' fsyncs for ~1 ms, while an on-demand handshake waited.
    if (!existsSync(path)) return undefined;
    const text = await readIfExists(path);
    return text === undefined ? undefined : parseCertFile(text, path, id);
  }

  async saveCert(cert: StoredCert): Promise<void> {
    const path = this.#certPath(cert.meta?.id);
    await this.#init();
    // Only the known fields: a caller's richer object (parse facts…) must not leak into the file.
    const file = { format: FORMAT, meta: cert.meta, certPem: cert.certPem, keyPem: cert.keyPem };
    const problem = certProblem(file, cert.meta.id);
    if (problem) throw new StoreCorruptError(`refusing to save certificate ${cert.meta.id}: it ${problem}`);
    await writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
    await this.#index.saved(cert.meta);
  }

  async deleteCert(id: string): Promise<boolean> {
    const path = this.#certPath(id);
    await this.#init();
    const existed = await removeFileDurable(path);
    this.#index.deleted(id);
    return existed;
  }

  /**
   * Metadata of every readable certificate, sorted by id; corrupt files are skipped and reported to
   * onWarning. Read through the metadata index: only files changed since it was written are parsed.
   */
  async listCerts(): Promise<CertMeta[]> {
    await this.#init();
    const dir = join(this.dataDir, 'certs');
    const { metas } = await this.#listing.run(() =>
      this.#index.list(async (id) => {
        const path = join(dir, `${id}.json`);
        try {
          const text = await readIfExists(path);
          return text === undefined ? undefined : parseCertFile(text, path, id).meta;
        } catch (err) {
          if (!(err instanceof StoreCorruptError)) throw err;
          this.#onWarning(err);
          return undefined;
        }
      }),
    );
    return metas.sort((a, b) => compare(a.id, b.id));
  }

  putPending(p: PendingIssue): Promise<void> {
    return this.#putRecord(PENDING, p);
  }

  deletePending(id: string): Promise<void> {
    return this.#deleteRecord(PENDING, id);
  }

  /** Pending requests, oldest first; corrupt files are skipped and reported to onWarning. */
  listPending(): Promise<PendingIssue[]> {
    return this.#listRecords(PENDING);
  }

  putDnsRecord(r: DnsRecordEntry): Promise<void> {
    return this.#putRecord(DNS_RECORDS, r);
  }

  deleteDnsRecord(id: string): Promise<void> {
    return this.#deleteRecord(DNS_RECORDS, id);
  }

  /** DNS records to remove, oldest first; corrupt files are skipped and reported to onWarning. */
  listDnsRecords(): Promise<DnsRecordEntry[]> {
    return this.#listRecords(DNS_RECORDS);
  }

  async getBlob(key: string): Promise<Buffer | undefined> {
    const path = join(this.dataDir, 'blobs', checkStoreKey(key, 'blob key'));
    await this.#init();
    try {
      return await readFile(path);
    } catch (err) {
      // ENOTDIR/EISDIR: a prefix of the key is a blob, or the key is a "folder": no such blob.
      if (['ENOENT', 'ENOTDIR', 'EISDIR'].includes(fsErrorCode(err) ?? '')) return undefined;
      throw err;
    }
  }

  async putBlob(key: string, data: Buffer | string, opts: { secret?: boolean } = {}): Promise<void> {
    const path = join(this.dataDir, 'blobs', checkStoreKey(key, 'blob key'));
    await this.#init();
    await ensureDir(dirname(path));
    await writeFileAtomic(path, data, { mode: opts.secret ? 0o600 : 0o644 });
  }

  async lock(key: string, opts: LockOptions = {}): Promise<Lock> {
    const path = await this.#lockPath(key);
    const lock = await acquireFileLock(path, key, { ...opts, ...this.#lockHooks });
    this.#locks.add(lock);
    return lock;
  }

  async tryLock(key: string, opts: Omit<LockOptions, 'waitMs'> = {}): Promise<Lock | undefined> {
    const path = await this.#lockPath(key);
    opts.signal?.throwIfAborted();
    const got = await tryAcquireFileLock(path, key, { ...opts, ...this.#lockHooks });
    if (!(got instanceof FileLock)) return undefined;
    this.#locks.add(got);
    return got;
  }

  /** Holds `locks/daemon.lock` until close() (see Store.claimForDaemon). */
  async claimForDaemon(onLost: (err: Error) => void): Promise<void> {
    const path = await this.#lockPath(DAEMON_LOCK);
    const got = await tryAcquireFileLock(path, DAEMON_LOCK, { ...this.#lockHooks, onLost });
    if (!(got instanceof FileLock)) {
      throw new StoreLockedError(
        `dataDir ${this.dataDir} is in use by another haproxy-certd daemon (${describeOwner(got.holder)}): stop it first, or give this daemon a dataDir of its own`,
      );
    }
    this.#locks.add(got);
    // Claimed: every writer that shares this directory goes through this daemon from now on (the
    // CLI uses its API), and it has written nothing yet, so every temp file is a crash's leftover.
    await this.removeLeftovers(0);
    this.#sweeper = setInterval(() => {
      this.removeLeftovers().catch((err: Error) => this.#onWarning(new Error(`could not sweep crash leftovers: ${err.message}`, { cause: err })));
    }, SWEEP_EVERY_MS);
    this.#sweeper.unref();
  }

  /** Releases the locks this instance still holds. Safe to call twice. */
  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    await this.#index.flush().catch((err: Error) => this.#onWarning(new Error(`could not write the certificate index at close: ${err.message}`, { cause: err })));
    await Promise.all([...this.#locks].map((l) => l.release()));
  }

  #certPath(id: string): string {
    return join(this.dataDir, 'certs', `${checkCertId(id)}.json`);
  }

  #recordPath(kind: RecordKind<unknown>, id: string): string {
    return join(this.dataDir, kind.folder, `${checkCertId(id)}.json`);
  }

  async #putRecord<T extends { id: string }>(kind: RecordKind<T>, record: T): Promise<void> {
    const path = this.#recordPath(kind, record.id);
    await this.#init();
    const file = { format: FORMAT, [kind.field]: record };
    const problem = recordProblem(kind, file, record.id);
    if (problem) throw new StoreCorruptError(`refusing to save ${kind.what} ${record.id}: it ${problem}`);
    await writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o644 });
  }

  async #deleteRecord(kind: RecordKind<unknown>, id: string): Promise<void> {
    const path = this.#recordPath(kind, id);
    await this.#init();
    await removeFileDurable(path);
  }

  async #listRecords<T extends { id: string }>(kind: RecordKind<T>): Promise<T[]> {
    await this.#init();
    const records = await this.#readAll(kind.folder, (text, path, id) => parseRecordFile(kind, text, path, id));
    return records.sort((a, b) => compare(kind.orderKey(a), kind.orderKey(b)) || compare(a.id, b.id));
  }

  async #lockPath(key: string): Promise<string> {
    const path = join(this.dataDir, 'locks', `${checkStoreKey(key, 'lock key')}.lock`);
    await this.#init();
    const dir = dirname(path);
    // Made once per directory: a lock sits on the path of a waiting on-demand handshake.
    if (!this.#lockDirs.has(dir)) {
      await ensureDir(dir);
      this.#lockDirs.add(dir);
    }
    return path;
  }

  #init(): Promise<void> {
    this.#ready ??= (async () => {
      for (const dir of SUBDIRS) await ensureDir(join(this.dataDir, dir));
      await this.removeLeftovers();
    })().catch((err: unknown) => {
      // Let a later call try again (the directory may be mounted or fixed meanwhile).
      this.#ready = undefined;
      throw err;
    });
    return this.#ready;
  }

  /**
   * Removes what crashes left behind: temp files and stale-lock break tokens older than
   * `olderThanMs` (default LEFTOVER_AGE_MS), and lock files whose holder died on this host or whose
   * lease ran out (ours are refreshed, so never among them). Done at open, by the claiming daemon
   * at its claim (all ages) and every SWEEP_EVERY_MS. Returns how many files were removed.
   */
  async removeLeftovers(olderThanMs = LEFTOVER_AGE_MS): Promise<number> {
    const onWarning = this.#onWarning;
    let removed = 0;
    for (const dir of SUBDIRS) {
      removed += await removeLeftoverFiles(join(this.dataDir, dir), { olderThanMs, alsoLeftover: isBreakTokenName, onWarning });
    }
    return removed + (await removeStaleLocks(join(this.dataDir, 'locks'), onWarning));
  }

  /** Reads and parses every `<id>.json` in a folder with bounded concurrency, skipping bad files. */
  async #readAll<T>(folder: string, parse: (text: string, path: string, id: string) => T): Promise<T[]> {
    const dir = join(this.dataDir, folder);
    const ids = (await readdir(dir))
      .filter((name) => name.endsWith('.json') && isCertId(name.slice(0, -5)))
      .map((name) => name.slice(0, -5));
    const out: T[] = [];
    await forEachLimited(ids, READ_CONCURRENCY, async (id) => {
      const path = join(dir, `${id}.json`);
      try {
        const text = await readIfExists(path);
        if (text !== undefined) out.push(parse(text, path, id));
      } catch (err) {
        if (!(err instanceof StoreCorruptError)) throw err;
        this.#onWarning(err);
      }
    });
    return out;
  }
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (fsErrorCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** Parses a certificate file; StoreCorruptError names the file. */
function parseCertFile(text: string, path: string, id: string): StoredCert {
  const v = parseJson(text, path);
  const problem = certProblem(v, id);
  if (problem) throw corrupt(path, problem);
  return { certPem: v.certPem, keyPem: v.keyPem, meta: v.meta } as StoredCert;
}

/**
 * A folder of small JSON records, one `<id>.json` each under `field`, listed oldest first: pending
 * issue requests, DNS-01 records to remove.
 */
interface RecordKind<T> {
  folder: string;
  field: string;
  /** Names it in errors: "pending request x". */
  what: string;
  /** The string fields every record has (checked on save and on load). */
  strings: readonly string[];
  lists?: readonly string[];
  orderKey(r: T): string;
}

const PENDING: RecordKind<PendingIssue> = {
  folder: 'pending',
  field: 'pending',
  what: 'pending request',
  strings: ['id', 'issuer', 'origin', 'requestedAt'],
  lists: ['names'],
  orderKey: (p) => p.requestedAt,
};

const DNS_RECORDS: RecordKind<DnsRecordEntry> = {
  folder: 'dns-records',
  field: 'record',
  what: 'DNS record',
  strings: ['id', 'issuer', 'fqdn', 'value', 'zone', 'writtenAt'],
  orderKey: (r) => r.writtenAt,
};

function parseRecordFile<T>(kind: RecordKind<T>, text: string, path: string, id: string): T {
  const v = parseJson(text, path);
  const problem = recordProblem(kind, v, id);
  if (problem) throw corrupt(path, problem);
  return v[kind.field] as T;
}

function recordProblem(kind: RecordKind<unknown>, v: Record<string, unknown>, id: string): string | undefined {
  const r = v[kind.field];
  const lists = kind.lists ?? [];
  const ok = v.format === FORMAT && isObject(r) && kind.strings.every((f) => typeof r[f] === 'string') && lists.every((f) => isStringArray(r[f]));
  if (!ok) return `is not a format-${FORMAT} ${kind.what} (string ${kind.strings.join(', ')}${lists.map((f) => ` and a ${f} list`).join('')})`;
  if (r.id !== id) return `holds ${kind.what} ${JSON.stringify(r.id)}, not ${JSON.stringify(id)}`;
  return undefined;
}

/** What is wrong with a certificate file's content, checked on save and on load. */
function certProblem(v: Record<string, unknown>, id: string): string | undefined {
  const { meta } = v;
  const ok =
    v.format === FORMAT &&
    typeof v.certPem === 'string' &&
    typeof v.keyPem === 'string' &&
    isObject(meta) &&
    CERT_META_STRINGS.every((f) => typeof meta[f] === 'string') &&
    isStringArray(meta.names);
  if (!ok) return `is not a format-${FORMAT} certificate (string certPem and keyPem, meta with string fields and a names list)`;
  if (meta.id !== id) return `holds certificate ${JSON.stringify(meta.id)}, not ${JSON.stringify(id)}`;
  return undefined;
}

function parseJson(text: string, path: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (cause) {
    throw corrupt(path, 'is not valid JSON', cause);
  }
  if (!isObject(v)) throw corrupt(path, 'is not a JSON object');
  return v;
}

function corrupt(path: string, what: string, cause?: unknown): StoreCorruptError {
  return new StoreCorruptError(`store file ${path} ${what}: restore it from a backup, or delete it and issue or import again`, { cause });
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}
