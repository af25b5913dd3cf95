import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, linkSync, openSync, readFileSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { open, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { sleep } from '../../core/async.js';
import { fsErrorCode, readDirIfExists, removeFileSync, tempPathFor, writeFileAtomic } from '../../core/atomic-write.js';
import { StoreLockedError } from '../../core/errors.js';
import { fencedError, type Lock } from '../locker.js';

export const DEFAULT_LEASE_MS = 30_000;
export const DEFAULT_WAIT_MS = 60_000;
/** A takeover holds its break token for milliseconds; an older token belongs to a dead process. */
const BREAK_TOKEN_STALE_MS = 10_000;

/** The content of a lock file. */
export interface LockRecord {
  /** hostname:pid:random, unique per acquisition (two locks in one process differ). */
  owner: string;
  /** ISO time; past it the lock is stale and anyone may take it over. */
  expiresAt: string;
  /** The fencing token of this grant (see nextFenceToken); "0" in files written before tokens. */
  token: string;
}

export interface FileLockOptions {
  /** Lease length (default 30 s); the holder refreshes it at a third of this. */
  leaseMs?: number;
  signal?: AbortSignal;
  /** Told when a held lock could not be refreshed or was lost to a takeover. */
  onWarning?: (err: Error) => void;
  /** Called once when the lock is released (to let an owner forget it). */
  onReleased?: (lock: FileLock) => void;
  /** Called once if the lock is lost (taken over after its lease ran out): the holder must stop. */
  onLost?: (err: Error) => void;
  /** The fencing counter file every lock of the store bumps (see nextFenceToken); required to grant. */
  fenceCounter: string;
}

/** A lock file as read at one moment. */
interface Seen {
  text: string;
  record: LockRecord | undefined;
  mtimeMs: number;
}

/** Why tryAcquireFileLock did not get the lock: the holder, when its file was readable. */
export interface LockHeld {
  holder: LockRecord | undefined;
}

/**
 * A lock held through a lock file with a lease. A timer (unref'd: it never keeps the process
 * alive) rewrites the file with a new expiry at a third of the lease. Safe to use concurrently;
 * release() is idempotent.
 */
export class FileLock implements Lock {
  readonly key: string;
  readonly token: string;
  readonly #path: string;
  readonly #owner: string;
  readonly #leaseMs: number;
  readonly #onWarning: (err: Error) => void;
  readonly #onReleased: ((lock: FileLock) => void) | undefined;
  readonly #onLost: ((err: Error) => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #refreshing: Promise<unknown> = Promise.resolve();
  #released: Promise<void> | undefined;
  /** Until when the lease is known to hold: the last write of the file plus the lease. */
  #confirmedUntil: number;

  constructor(key: string, path: string, owner: string, token: string, opts: Required<Pick<FileLockOptions, 'leaseMs' | 'onWarning'>> & FileLockOptions) {
    this.key = key;
    this.token = token;
    this.#confirmedUntil = Date.now() + opts.leaseMs;
    this.#path = path;
    this.#owner = owner;
    this.#leaseMs = opts.leaseMs;
    this.#onWarning = opts.onWarning;
    this.#onReleased = opts.onReleased;
    this.#onLost = opts.onLost;
    this.#schedule();
  }

  get held(): boolean {
    return this.#released === undefined && Date.now() < this.#confirmedUntil;
  }

  /**
   * Refuses a write fenced with this lock (FencedWriteError) unless the lock file still names this
   * grant with a running lease. Synchronous (one small read), so it runs right before a rename.
   */
  checkFence(what: string): void {
    if (!this.held) throw fencedError(what, this, this.#released ? 'was released' : 'lost its lease');
    let record: LockRecord | undefined;
    try {
      record = parseRecord(readFileSync(this.#path, 'utf8'));
    } catch (err) {
      if (fsErrorCode(err) !== 'ENOENT') throw err;
    }
    if (record?.owner !== this.#owner || record.token !== this.token) throw fencedError(what, this, record ? `was taken over (now token ${record.token})` : 'is gone from its file');
    if (Date.parse(record.expiresAt) <= Date.now()) throw fencedError(what, this, 'lease ran out');
  }

  release(): Promise<void> {
    this.#released ??= this.#release();
    return this.#released;
  }

  async #release(): Promise<void> {
    clearTimeout(this.#timer);
    await this.#refreshing;
    this.#onReleased?.(this);
    // After a takeover the file belongs to the new holder: delete it only if it is still ours.
    // Synchronous like createExclusive (a small read and an unlink, no fsync): through the pool,
    // this release and the crash intent's removal beside it waited 8–12 ms behind other writes at
    // 32 concurrent issues (bench/scale.ts ingest, a probe).
    let text: string;
    try {
      text = readFileSync(this.#path, 'utf8');
    } catch (err) {
      if (fsErrorCode(err) === 'ENOENT') return;
      throw err;
    }
    if (parseRecord(text)?.owner === this.#owner) removeFileSync(this.#path);
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      if (this.#released) return;
      const run = this.#refresh();
      this.#refreshing = run;
      void run.then((keep) => {
        if (keep && !this.#released) this.#schedule();
      });
    }, this.#leaseMs / 3);
    this.#timer.unref();
  }

  /** Extends the lease; returns false once the lock is lost (then refreshing stops). */
  async #refresh(): Promise<boolean> {
    try {
      const seen = await readLockFile(this.#path);
      if (seen?.record?.owner !== this.#owner) {
        const why = seen ? `${seen.record?.owner ?? 'another process'} took it over after its lease expired` : 'its file was removed';
        const lost = new StoreLockedError(`lock ${this.key} was lost: ${why}; the work it protected may run twice`);
        this.#confirmedUntil = 0;
        this.#onWarning(lost);
        this.#onLost?.(lost);
        return false;
      }
      const asked = Date.now();
      await writeFileAtomic(this.#path, recordText(this.#owner, this.#leaseMs, this.token), { mode: 0o644 });
      this.#confirmedUntil = asked + this.#leaseMs;
    } catch (cause) {
      this.#onWarning(new StoreLockedError(`could not refresh lock ${this.key} (will retry): ${String(cause)}`, { cause }));
    }
    return true;
  }
}

/**
 * One attempt at the lock file `path` (its directory must exist): creates it with O_EXCL, or takes
 * it over if stale, else reports the holder at once. Safe against any number of concurrent
 * contenders, in this process or others sharing the file system: exactly one wins.
 */
export async function tryAcquireFileLock(path: string, key: string, opts: FileLockOptions): Promise<FileLock | LockHeld> {
  const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
  // Below this the refresh timer would spin and clock jitter alone would expire locks.
  if (!(leaseMs >= 30)) throw new RangeError(`lock lease ${leaseMs} ms is too short: use at least 30 ms (default ${DEFAULT_LEASE_MS})`);
  const onWarning = opts.onWarning ?? ((err: Error) => process.emitWarning(err));
  let seen: Seen | undefined;
  // A few rounds only: each lost round means another contender made progress; the caller polls.
  for (let round = 0; round < 3; round++) {
    const owner = `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
    // A token only when the lock looks free: a poller of a held lock does not bump the counter.
    if (!existsSync(path)) {
      const token = await nextFenceToken(opts.fenceCounter, opts.signal);
      if (createExclusive(path, recordText(owner, leaseMs, token))) {
        return new FileLock(key, path, owner, token, { ...opts, leaseMs, onWarning });
      }
    }
    seen = await readLockFile(path);
    if (seen === undefined) continue;
    if (!isStale(seen, leaseMs) || !(await breakStale(path, seen, leaseMs))) break;
  }
  return { holder: seen?.record };
}

/**
 * Waits for the lock file `path`, polling with backoff (10 ms doubling to 200 ms, jittered) for up
 * to waitMs (default 60 s), then throws StoreLockedError naming the holder. Rejects with the
 * signal's reason when aborted. Safe to call concurrently.
 */
export async function acquireFileLock(path: string, key: string, opts: FileLockOptions & { waitMs?: number }): Promise<FileLock> {
  const { signal } = opts;
  const waitMs = opts.waitMs ?? DEFAULT_WAIT_MS;
  if (!(waitMs >= 0)) throw new RangeError(`lock wait ${waitMs} ms is invalid: use 0 or more (default ${DEFAULT_WAIT_MS})`);
  const deadline = Date.now() + waitMs;
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    signal?.throwIfAborted();
    const got = await tryAcquireFileLock(path, key, opts);
    if (got instanceof FileLock) {
      if (signal?.aborted) {
        await got.release();
        signal.throwIfAborted();
      }
      return got;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      const who = got.holder ? `by ${got.holder.owner} (lease until ${got.holder.expiresAt})` : `(its file ${path} is unreadable)`;
      throw new StoreLockedError(
        `lock ${key} is still held ${who} after waiting ${waitMs} ms; retry later — a lock whose holder died frees itself when its lease expires`,
      );
    }
    try {
      await sleep(Math.min(delay / 2 + Math.random() * (delay / 2), left), signal);
    } catch (err) {
      signal?.throwIfAborted();
      throw err;
    }
  }
}

/**
 * A holder on this host whose process is gone (killed -9 mid-issue) need not wait out its lease:
 * the next daemon start can finish the job at once. Other hosts' holders only expire.
 */
function ownerIsDead(owner: string): boolean {
  const [host, pidText] = owner.split(':');
  const pid = Number(pidText);
  if (host !== hostname() || !Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return fsErrorCode(err) === 'ESRCH';
  }
}

function recordText(owner: string, leaseMs: number, token: string): string {
  const record: LockRecord = { owner, expiresAt: new Date(Date.now() + leaseMs).toISOString(), token };
  return `${JSON.stringify(record)}\n`;
}

/**
 * The next fencing token of a store's locks: `counter` (a decimal in a file beside the locks)
 * read, bumped and written in place (writeCounter) while holding its mutex, `<counter>.lock.break`, created
 * with O_EXCL by link() like every break token (so a crash's leftover is swept as one, and one
 * older than BREAK_TOKEN_STALE_MS is broken). Strictly growing across processes on one host;
 * not fsync'd (a process crash keeps it, a power loss may set it back: fs fencing is best-effort
 * on one host, see docs/DESIGN.md). Synchronous inside the mutex, no await while held: it added
 * ~0.2 ms to a lock take (p50 0.11 → 0.34 ms, docs/DESIGN.md §6).
 */
export async function nextFenceToken(counter: string, signal?: AbortSignal): Promise<string> {
  const mutex = `${counter}.lock.break`;
  for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
    if (createExclusive(mutex, `${process.pid}\n`)) {
      try {
        let n = 0n;
        try {
          const text = readFileSync(counter, 'utf8').trim();
          if (/^\d+$/.test(text)) n = BigInt(text);
        } catch (err) {
          if (fsErrorCode(err) !== 'ENOENT') throw err;
        }
        const next = (n + 1n).toString();
        writeCounter(counter, `${next}\n`);
        return next;
      } finally {
        try {
          unlinkSync(mutex);
        } catch {
          // swept later as a leftover break token
        }
      }
    }
    try {
      if (statSync(mutex).mtimeMs + BREAK_TOKEN_STALE_MS <= Date.now()) unlinkSync(mutex);
    } catch {
      // gone meanwhile: retry at once
    }
    await sleep(delay, signal);
  }
}

/**
 * Writes the counter's new value over the old one in place (created on first use). Not a temp
 * file renamed over it: ext4 flushes a file renamed over another one at the rename (auto_da_alloc),
 * which took ~2.3 ms here, synchronously on the event loop for every lock taken; in place it is
 * ~0.02 ms. The value only grows, so its text is never shorter than the old one's and covers it
 * whole; the write is one small syscall, which a killed process either made or did not (a power
 * loss may set the counter back, as documented above).
 */
function writeCounter(counter: string, text: string): void {
  let fd: number;
  try {
    fd = openSync(counter, 'r+');
  } catch (err) {
    if (fsErrorCode(err) !== 'ENOENT') throw err;
    fd = openSync(counter, 'wx', 0o644);
  }
  try {
    writeSync(fd, text, 0);
  } finally {
    closeSync(fd);
  }
}

/**
 * Creates the lock file only if absent; false when it exists. Written aside, then linked into
 * place (link fails if the name exists): the lock file appears complete or not at all. Created and
 * then written, a kill -9 in between would leave an empty lock that names no owner, which only its
 * lease could free (measured: a restarted daemon then waited 30 s to finish its interrupted issues).
 * A temp file a crash leaves behind is swept as a leftover.
 *
 * Synchronous on purpose: four metadata calls on a tiny file, no fsync, ~40 µs in all, where the
 * same calls through the libuv pool took ~1.4 ms, queued behind other writes' fsyncs, while an
 * on-demand handshake waited for this lock.
 */
function createExclusive(path: string, text: string): boolean {
  const tmp = tempPathFor(path);
  writeFileSync(tmp, text, { mode: 0o644, flag: 'wx' });
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if (fsErrorCode(err) === 'EEXIST') return false;
    throw err;
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // A leftover temp file is swept later.
    }
  }
}

/** The record of a lock file, undefined when absent or unreadable. */
export async function readLockRecord(path: string): Promise<LockRecord | undefined> {
  return (await readLockFile(path))?.record;
}

async function readLockFile(path: string): Promise<Seen | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if (fsErrorCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const { mtimeMs } = await fh.stat();
    const text = await fh.readFile('utf8');
    return { text, record: parseRecord(text), mtimeMs };
  } finally {
    await fh.close();
  }
}

function parseRecord(text: string): LockRecord | undefined {
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v === 'object' && v !== null && 'owner' in v && 'expiresAt' in v) {
      const { owner, expiresAt } = v;
      const token = 'token' in v && typeof v.token === 'string' && /^\d+$/.test(v.token) ? v.token : '0';
      if (typeof owner === 'string' && typeof expiresAt === 'string' && !Number.isNaN(Date.parse(expiresAt))) {
        return { owner, expiresAt, token };
      }
    }
  } catch {
    // Not JSON: handled as garbage by the caller.
  }
  return undefined;
}

function isStale(seen: Seen, leaseMs: number): boolean {
  if (seen.record) return Date.parse(seen.record.expiresAt) <= Date.now() || ownerIsDead(seen.record.owner);
  // Unreadable: a holder that crashed before filling the file, or one filling it right now.
  // Give it one lease from its last change before calling it stale.
  return seen.mtimeMs + leaseMs <= Date.now();
}

/**
 * Removes a stale lock file so the caller can retry O_EXCL; true if the caller should retry.
 * Removal is not conditional in POSIX, so all takeovers of one lock go through a break token
 * created with O_EXCL: its holder alone re-reads the lock file and removes it if it is still the
 * stale one; everyone else backs off. (Renaming the stale file aside is not enough: a contender
 * that read the stale file late would move a fresh lock aside, and putting it back races with
 * O_EXCL creators.) What remains unprotected is a holder that goes on past its lease, which no
 * lease can prevent, and a breaker dying within its few-millisecond window (its token then expires).
 */
async function breakStale(path: string, seen: Seen, leaseMs: number): Promise<boolean> {
  const token = join(dirname(path), `.${basename(path)}.break`);
  if (!createExclusive(token, `${process.pid}\n`)) {
    const since = await stat(token).then((st) => st.mtimeMs, () => undefined);
    if (since !== undefined && since + BREAK_TOKEN_STALE_MS <= Date.now()) await unlink(token).catch(() => undefined);
    return false;
  }
  try {
    const now = await readLockFile(path);
    if (now === undefined) return true;
    if (now.text !== seen.text && !isStale(now, leaseMs)) return false;
    await unlink(path).catch((err: unknown) => {
      if (fsErrorCode(err) !== 'ENOENT') throw err;
    });
    return true;
  } finally {
    await unlink(token).catch(() => undefined);
  }
}

/**
 * Removes the lock files under `dir` (recursively) whose holder died on this host or whose lease
 * ran out: a crashed daemon's locks, which nobody might ask for again. Goes through breakStale, so
 * a contender taking one of them over at the same moment is safe. Returns how many were removed.
 */
export async function removeStaleLocks(dir: string, onWarning: (err: Error) => void): Promise<number> {
  let removed = 0;
  for (const entry of await readDirIfExists(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      removed += await removeStaleLocks(path, onWarning);
      continue;
    }
    if (!entry.name.endsWith('.lock') || entry.name.startsWith('.')) continue;
    try {
      const seen = await readLockFile(path);
      if (seen && isStale(seen, DEFAULT_LEASE_MS) && (await breakStale(path, seen, DEFAULT_LEASE_MS))) removed++;
    } catch (cause) {
      onWarning(new Error(`could not remove stale lock ${path}`, { cause }));
    }
  }
  return removed;
}

/** Whether a file name is a stale-lock break token (left behind only by a crash mid-takeover). */
export function isBreakTokenName(name: string): boolean {
  return /^\..+\.lock\.break$/.test(name);
}
