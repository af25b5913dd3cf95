import { dirname, join } from 'node:path';
import { ensureDir } from '../../core/atomic-write.js';
import { fencedError, type Lock, type Locker, type LockHolder, type LockOptions } from '../locker.js';
import { acquireFileLock, FileLock, readLockRecord, tryAcquireFileLock } from './file-lock.js';
import { checkStoreKey } from './keys.js';

/**
 * The fs locker: `locks/<key>.lock` files (O_EXCL via link(), a lease refreshed by the holder,
 * stale ones broken under a break token; see file-lock.ts) and `locks/.fence`, the counter every
 * grant bumps for its fencing token. `ready` prepares the store's directories before any file is made.
 */
export class FsLocker implements Locker {
  readonly #dir: string;
  readonly #ready: () => Promise<void>;
  readonly #onWarning: (err: Error) => void;
  readonly #held = new Set<FileLock>();
  /** Lock directories known to exist. */
  readonly #dirs = new Set<string>();

  constructor(o: { dir: string; ready: () => Promise<void>; onWarning: (err: Error) => void }) {
    this.#dir = o.dir;
    this.#ready = o.ready;
    this.#onWarning = o.onWarning;
  }

  async lock(key: string, opts: LockOptions = {}): Promise<FileLock> {
    const path = await this.#path(key);
    const lock = await acquireFileLock(path, key, { ...opts, ...this.#hooks() });
    this.#held.add(lock);
    return lock;
  }

  async tryLock(key: string, opts: Omit<LockOptions, 'waitMs'> = {}): Promise<FileLock | undefined> {
    const path = await this.#path(key);
    opts.signal?.throwIfAborted();
    const got = await tryAcquireFileLock(path, key, { ...opts, ...this.#hooks() });
    if (!(got instanceof FileLock)) return undefined;
    this.#held.add(got);
    return got;
  }

  async holder(key: string): Promise<LockHolder | undefined> {
    const record = await readLockRecord(await this.#path(key));
    if (!record) return undefined;
    const expiresAt = new Date(record.expiresAt);
    return expiresAt.getTime() > Date.now() ? { owner: record.owner, expiresAt } : undefined;
  }

  /**
   * Refuses a write fenced with `fences` unless each is one of this locker's locks still named by
   * its file with a running lease. Best-effort on one host: checked right before the rename, so a
   * takeover in the microseconds between check and rename is not caught (no POSIX primitive makes
   * a rename conditional on another file).
   */
  checkFences(fences: readonly Lock[] | undefined, what: string): void {
    for (const f of fences ?? []) {
      if (!(f instanceof FileLock)) throw fencedError(what, f, 'is not a lock of this store');
      f.checkFence(what);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.#held].map((l) => l.release()));
  }

  #hooks() {
    return {
      onWarning: this.#onWarning,
      onReleased: (lock: FileLock) => this.#held.delete(lock),
      fenceCounter: join(this.#dir, '.fence'),
    };
  }

  async #path(key: string): Promise<string> {
    const path = join(this.#dir, `${checkStoreKey(key, 'lock key')}.lock`);
    await this.#ready();
    const dir = dirname(path);
    // Made once per directory: a lock sits on the path of a waiting on-demand handshake.
    if (!this.#dirs.has(dir)) {
      await ensureDir(dir);
      this.#dirs.add(dir);
    }
    return path;
  }
}
