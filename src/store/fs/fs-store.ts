import { CertStore } from '../cert-store.js';
import type { KeyRing } from '../../crypto/secret-box.js';
import type { LockOptions } from '../locker.js';
import type { FileLock } from './file-lock.js';
import { FsStorage } from './fs-storage.js';

export interface FsStoreOptions {
  /**
   * Told about problems that do not fail the call: a corrupt file skipped by a list, a leftover
   * that could not be cleaned, a lock lost to a takeover. Default: process.emitWarning.
   */
  onWarning?: (err: Error) => void;
  /** How long index changes wait to be written together (default 2 s; see meta-index.ts). */
  indexDelayMs?: number;
  /** Seals private keys and secret blobs; without it (the default) they are kept clear, 0600. */
  keys?: KeyRing;
}

/** How often the daemon holding the store sweeps leftovers (so none lives much past LEFTOVER_AGE_MS). */
const SWEEP_EVERY_MS = 15_000;

/**
 * The typed store on a local (or shared POSIX) file system under `dataDir`: CertStore over the
 * fs storage (fs-storage.ts: one file per record, atomic renames) and the fs locker
 * (fs-locker.ts: O_EXCL lock files with a lease and a fencing token). Every method is safe to
 * call concurrently, from this process and from other processes using the same directory.
 */
export class FsStore extends CertStore {
  readonly dataDir: string;
  readonly #fs: FsStorage;
  readonly #onWarning: (err: Error) => void;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(dataDir: string, opts: FsStoreOptions = {}) {
    const onWarning = opts.onWarning ?? ((err: Error) => process.emitWarning(err));
    const storage = new FsStorage(dataDir, { onWarning, indexDelayMs: opts.indexDelayMs });
    super(storage, storage.locker, { keys: opts.keys, onWarning, claimHint: 'stop it first, or give this daemon a dataDir of its own' });
    this.#fs = storage;
    this.#onWarning = onWarning;
    this.dataDir = storage.dataDir;
  }

  /** Creates a store and prepares its directories (also done lazily by the first call). */
  static async open(dataDir: string, opts: FsStoreOptions = {}): Promise<FsStore> {
    const store = new FsStore(dataDir, opts);
    await store.#fs.ready();
    return store;
  }

  override lock(key: string, opts?: LockOptions): Promise<FileLock> {
    return this.#fs.locker.lock(key, opts);
  }

  override tryLock(key: string, opts?: Omit<LockOptions, 'waitMs'>): Promise<FileLock | undefined> {
    return this.#fs.locker.tryLock(key, opts);
  }

  /** See FsStorage.removeLeftovers. */
  removeLeftovers(olderThanMs?: number): Promise<number> {
    return this.#fs.removeLeftovers(olderThanMs);
  }

  /**
   * Claimed: every writer that shares this directory goes through this daemon from now on (the
   * CLI uses its API), and it has written nothing yet, so every temp file is a crash's leftover.
   */
  protected override async afterClaim(): Promise<void> {
    await this.removeLeftovers(0);
    this.#sweeper = setInterval(() => {
      this.removeLeftovers().catch((err: Error) => this.#onWarning(new Error(`could not sweep crash leftovers: ${err.message}`, { cause: err })));
    }, SWEEP_EVERY_MS);
    this.#sweeper.unref();
  }

  /** Writes the index, then releases the locks this instance still holds. Safe to call twice. */
  override async close(): Promise<void> {
    clearInterval(this.#sweeper);
    await this.#fs.close();
    await super.close();
  }
}
