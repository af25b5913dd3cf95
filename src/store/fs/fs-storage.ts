import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { forEachLimited, SerialQueue } from '../../core/async.js';
import { ensureDir, fsErrorCode, removeFileDurable, removeFileSync, removeLeftoverFiles, replaceFileSync, writeFileAtomic, type SweepMemo } from '../../core/atomic-write.js';
import { StoreCorruptError } from '../../core/errors.js';
import type { ListedRecord, ReadRecord, RecordKind, SecretBody, Storage, StorageRecord, StorageWriteOptions } from '../storage.js';
import type { CertMeta } from '../store.js';
import { isBreakTokenName, removeStaleLocks } from './file-lock.js';
import { FsLocker } from './fs-locker.js';
import { checkCertId, checkStoreKey, isCertId } from './keys.js';
import { CertMetaIndex } from './meta-index.js';

export interface FsStorageOptions {
  onWarning?: (err: Error) => void;
  /** How long index changes wait to be written together (default 2 s; see meta-index.ts). */
  indexDelayMs?: number;
}

/** Version of the certificate and record file formats, so a later layout can read old files. */
const FORMAT = 1;
/**
 * Leftover temp files older than this are removed on open. Younger ones may belong to a live
 * writer in another process sharing the data directory (a CLI next to the daemon); removing those
 * would fail its rename. They are ignored by lists either way.
 */
export const LEFTOVER_AGE_MS = 60_000;
const SUBDIRS = ['certs', 'pending', 'blobs', 'locks', 'dns-records', 'index'];
/** Bounds open files while listing thousands of records. */
const READ_CONCURRENCY = 16;
/** Starts a blob sealed by the typed layer (a store with a key file): the key id follows, then the sealed bytes. */
const SEALED_BLOB = Buffer.from('\0certd-sealed:1:');

/**
 * Small JSON records: one `<folder>/<id>.json` each, the record under `field`. `durable: false`:
 * written and removed without fsync, synchronously (replaceFileSync): a crash intent only has to
 * outlive a crash of the daemon, which the page cache does. A power loss may lose one or bring a
 * removed one back; neither loses anything acknowledged: the request it was for was not answered
 * yet, a due renewal is found due again, and a leftover whose certificate is stored is dropped
 * at start. A DNS record stays durable: losing it would leave its TXT record in DNS.
 */
const RECORD_FILES: Partial<Record<RecordKind, { folder: string; field: string; what: string; durable: boolean }>> = {
  pending: { folder: 'pending', field: 'pending', what: 'pending request', durable: false },
  'dns-record': { folder: 'dns-records', field: 'record', what: 'DNS record', durable: true },
};

/**
 * The fs backend's storage, under `dataDir`: `certs/<id>.json` (meta, certPem and the key in one
 * file, 0600: keyPem clear, or keyId + keySealed when the typed layer seals), `pending/<id>.json`,
 * `dns-records/<id>.json`, `blobs/<key>` (0600 when secret), `index/certs.json` (the metadata
 * index, see meta-index.ts), and the locks (fs-locker.ts); directories 0700. Safe to use
 * concurrently, from this process and from other processes sharing the directory: writes are
 * atomic renames; fenced writes check their locks right before the rename.
 */
export class FsStorage implements Storage {
  readonly dataDir: string;
  readonly where: string;
  readonly locker: FsLocker;
  readonly #onWarning: (err: Error) => void;
  readonly #index: CertMetaIndex;
  /** Certificate listings one after the other: the index is validated by one at a time. */
  readonly #listing = new SerialQueue();
  #ready: Promise<void> | undefined;
  /** What the periodic leftover sweeps saw, so an unchanged directory is not read again (see removeLeftoverFiles). */
  readonly #sweepMemo: SweepMemo = new Map();

  constructor(dataDir: string, opts: FsStorageOptions = {}) {
    this.dataDir = resolve(dataDir);
    this.where = `dataDir ${this.dataDir}`;
    this.#onWarning = opts.onWarning ?? ((err) => process.emitWarning(err));
    this.#index = new CertMetaIndex({ path: join(this.dataDir, 'index', 'certs.json'), certDir: join(this.dataDir, 'certs'), delayMs: opts.indexDelayMs, onWarning: (err) => this.#onWarning(err) });
    this.locker = new FsLocker({ dir: join(this.dataDir, 'locks'), ready: () => this.ready(), onWarning: (err) => this.#onWarning(err) });
  }

  async get(kind: RecordKind, name: string): Promise<ReadRecord | undefined> {
    const path = this.#path(kind, name);
    await this.ready();
    if (kind === 'blob') {
      let data: Buffer;
      try {
        data = await readFile(path);
      } catch (err) {
        // ENOTDIR/EISDIR: a prefix of the key is a blob, or the key is a "folder": no such blob.
        if (['ENOENT', 'ENOTDIR', 'EISDIR'].includes(fsErrorCode(err) ?? '')) return undefined;
        throw err;
      }
      return { meta: {}, ...blobContent(data, path), where: `store file ${path}` };
    }
    // "None" is answered with one synchronous stat (~10 µs): through the libuv pool the same
    // answer queued behind other writes' fsyncs for ~1 ms, while an on-demand handshake waited.
    if (kind === 'cert' && !existsSync(path)) return undefined;
    const text = await readIfExists(path);
    if (text === undefined) return undefined;
    return kind === 'cert' ? parseCertFile(text, path) : { meta: parseRecordFile(kind, text, path), where: `store file ${path}` };
  }

  async getMany(kind: RecordKind, names: readonly string[]): Promise<Map<string, ReadRecord>> {
    // A file each either way: no batch to gain, only the contract to keep.
    const found = new Map<string, ReadRecord>();
    for (const name of names) {
      const r = await this.get(kind, name);
      if (r) found.set(name, r);
    }
    return found;
  }

  async put(kind: RecordKind, name: string, record: StorageRecord, opts: StorageWriteOptions = {}): Promise<void> {
    const path = this.#path(kind, name);
    await this.ready();
    const fence = { beforeRename: () => this.locker.checkFences(opts.fences, `${kind} ${name}`) };
    if (kind === 'blob') {
      await ensureDir(dirname(path));
      const { secret } = record;
      const data = secret ? (secret.keyId === undefined ? secret.data : Buffer.concat([SEALED_BLOB, Buffer.from(`${secret.keyId}\n`), secret.data])) : (record.body ?? Buffer.alloc(0));
      await writeFileAtomic(path, data, { mode: secret ? 0o600 : 0o644, ...fence });
      return;
    }
    if (kind === 'cert') {
      const { secret } = record;
      if (!record.body || !secret) throw new StoreCorruptError(`refusing to save certificate ${name}: it needs a certificate and a key`);
      const key = secret.keyId === undefined ? { keyPem: secret.data.toString('utf8') } : { keyId: secret.keyId, keySealed: secret.data.toString('base64') };
      const file = { format: FORMAT, meta: record.meta, certPem: record.body.toString('utf8'), ...key };
      await writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, ...fence });
      await this.#index.saved(record.meta as unknown as CertMeta);
      return;
    }
    const { field, durable } = recordFile(kind);
    const text = `${JSON.stringify({ format: FORMAT, [field]: record.meta }, null, 2)}\n`;
    if (durable) await writeFileAtomic(path, text, { mode: 0o644, ...fence });
    else replaceFileSync(path, text, { mode: 0o644, ...fence });
  }

  async delete(kind: RecordKind, name: string, opts: StorageWriteOptions = {}): Promise<boolean> {
    const path = this.#path(kind, name);
    await this.ready();
    this.locker.checkFences(opts.fences, `${kind} ${name}`);
    const durable = kind === 'cert' || kind === 'blob' || recordFile(kind).durable;
    const existed = await (durable ? removeFileDurable(path) : Promise.resolve().then(() => removeFileSync(path))).catch((err: unknown) => {
      if (kind === 'blob' && ['ENOTDIR', 'EISDIR'].includes(fsErrorCode(err) ?? '')) return false;
      throw err;
    });
    if (kind === 'cert') this.#index.deleted(name);
    return existed;
  }

  async list(kind: RecordKind): Promise<ListedRecord[]> {
    await this.ready();
    if (kind === 'blob') return (await fsBlobKeys(this.dataDir)).map((name) => ({ name, meta: {}, where: `store file ${join(this.dataDir, 'blobs', name)}` }));
    if (kind === 'cert') {
      const dir = join(this.dataDir, 'certs');
      const { entries } = await this.#listing.run(() =>
        this.#index.list(async (id) => {
          const path = join(dir, `${id}.json`);
          try {
            const text = await readIfExists(path);
            return text === undefined ? undefined : (parseCertFile(text, path).meta as unknown as CertMeta);
          } catch (err) {
            if (!(err instanceof StoreCorruptError)) throw err;
            this.#onWarning(err);
            return undefined;
          }
        }),
      );
      return entries.map(({ id, meta }) => ({ name: id, meta: meta as unknown as Record<string, unknown>, where: `store file ${join(dir, `${id}.json`)}` }));
    }
    const dir = join(this.dataDir, recordFile(kind).folder);
    const names = (await readdir(dir)).filter((n) => n.endsWith('.json') && isCertId(n.slice(0, -5))).map((n) => n.slice(0, -5));
    const out: ListedRecord[] = [];
    await forEachLimited(names, READ_CONCURRENCY, async (name) => {
      const path = join(dir, `${name}.json`);
      try {
        const text = await readIfExists(path);
        if (text !== undefined) out.push({ name, meta: parseRecordFile(kind, text, path), where: `store file ${path}` });
      } catch (err) {
        if (!(err instanceof StoreCorruptError)) throw err;
        this.#onWarning(err);
      }
    });
    return out;
  }

  /** Writes the metadata index now (close). */
  flush(): Promise<void> {
    return this.#index.flush();
  }

  async close(): Promise<void> {
    await this.flush().catch((err: Error) => this.#onWarning(new Error(`could not write the certificate index at close: ${err.message}`, { cause: err })));
  }

  /** Prepares the directories (once; a failure lets a later call try again). */
  ready(): Promise<void> {
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
   * lease ran out (ours are refreshed, so never among them). Returns how many files were removed.
   */
  async removeLeftovers(olderThanMs = LEFTOVER_AGE_MS): Promise<number> {
    const onWarning = this.#onWarning;
    let removed = 0;
    for (const dir of SUBDIRS) {
      removed += await removeLeftoverFiles(join(this.dataDir, dir), { olderThanMs, alsoLeftover: isBreakTokenName, onWarning, memo: this.#sweepMemo });
    }
    return removed + (await removeStaleLocks(join(this.dataDir, 'locks'), onWarning));
  }

  /** Checked before any I/O: a hostile name never reaches a path. */
  #path(kind: RecordKind, name: string): string {
    if (kind === 'blob') return join(this.dataDir, 'blobs', checkStoreKey(name, 'blob key'));
    const folder = kind === 'cert' ? 'certs' : recordFile(kind).folder;
    return join(this.dataDir, folder, `${checkCertId(name)}.json`);
  }
}

/**
 * The blob keys of an fs store rooted at dataDir (`blobs/<key>`), sorted. Crash leftovers and
 * anything that is not a valid key are skipped; no blobs folder is no blobs.
 */
export async function fsBlobKeys(dataDir: string): Promise<string[]> {
  const root = join(dataDir, 'blobs');
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  const keys: string[] = [];
  for (const e of entries) {
    if (!e.isFile()) continue;
    const key = relative(root, join(e.parentPath, e.name)).split(sep).join('/');
    try {
      keys.push(checkStoreKey(key));
    } catch {
      // a temp file (".name.<hex>.tmp") or a stray file: not a blob
    }
  }
  return keys.sort();
}

function recordFile(kind: RecordKind): { folder: string; field: string; what: string; durable: boolean } {
  const f = RECORD_FILES[kind];
  if (!f) throw new TypeError(`no record files for kind ${kind}`);
  return f;
}

function blobContent(data: Buffer, path: string): { body?: Buffer; secret?: SecretBody } {
  if (!data.subarray(0, SEALED_BLOB.length).equals(SEALED_BLOB)) return { body: data };
  const end = data.indexOf(0x0a, SEALED_BLOB.length);
  if (end < 0) throw corruptFile(path, 'is a sealed blob without its key id');
  return { secret: { keyId: data.subarray(SEALED_BLOB.length, end).toString('utf8'), data: data.subarray(end + 1) } };
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (fsErrorCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** A certificate file's parts; StoreCorruptError names the file when it is not one. */
function parseCertFile(text: string, path: string): ReadRecord {
  const v = parseJson(text, path);
  const clear = typeof v.keyPem === 'string';
  const sealed = typeof v.keyId === 'string' && typeof v.keySealed === 'string';
  if (v.format !== FORMAT || typeof v.certPem !== 'string' || !(clear || sealed) || !isObject(v.meta)) {
    throw corruptFile(path, `is not a format-${FORMAT} certificate (string certPem and keyPem, meta with string fields and a names list)`);
  }
  const secret: SecretBody = clear ? { data: Buffer.from(v.keyPem as string) } : { keyId: v.keyId as string, data: Buffer.from(v.keySealed as string, 'base64') };
  return { meta: v.meta, body: Buffer.from(v.certPem), secret, where: `store file ${path}` };
}

function parseRecordFile(kind: RecordKind, text: string, path: string): Record<string, unknown> {
  const { field, what } = recordFile(kind);
  const v = parseJson(text, path);
  const r = v[field];
  if (v.format !== FORMAT || !isObject(r)) throw corruptFile(path, `is not a format-${FORMAT} ${what}`);
  return r;
}

function parseJson(text: string, path: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (cause) {
    throw corruptFile(path, 'is not valid JSON', cause);
  }
  if (!isObject(v)) throw corruptFile(path, 'is not a JSON object');
  return v;
}

function corruptFile(path: string, what: string, cause?: unknown): StoreCorruptError {
  return new StoreCorruptError(`store file ${path} ${what}: restore it from a backup, or delete it and issue or import again`, { cause });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
