import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { sleep } from '../../core/async.js';
import { StoreLockedError } from '../../core/errors.js';
import { checkStoreKey } from '../fs/keys.js';
import { describeOwner, fencedError, type Lock, type Locker, type LockHolder, type LockOptions } from '../locker.js';

export const DEFAULT_LEASE_MS = 30_000;
const DEFAULT_WAIT_MS = 60_000;

/** Runs one statement (the store's query function: outages are tracked there). */
export type Query = <R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]) => Promise<pg.QueryResult<R>>;

/**
 * The postgres locker: leases as rows of `certd_locks` (key, owner, token, expires_at), taken in
 * one statement when free or expired, each grant with a token from the `certd_fence` sequence
 * (see docs/DESIGN.md §5). A write is fenced in its own statement (fenceSql).
 */
export class PgLocker implements Locker {
  readonly #q: Query;
  readonly #held = new Set<PgLock>();
  readonly #onWarning: (err: Error) => void;
  readonly #unavailable: (message: string, cause: Error) => Error;

  constructor(o: { query: Query; onWarning: (err: Error) => void; unavailable: (message: string, cause: Error) => Error }) {
    this.#q = o.query;
    this.#onWarning = o.onWarning;
    this.#unavailable = o.unavailable;
  }

  /** Waits for the lease (polling with backoff, bounded by waitMs), or throws StoreLockedError naming the holder. */
  async lock(key: string, opts: LockOptions = {}): Promise<PgLock> {
    const waitMs = opts.waitMs ?? DEFAULT_WAIT_MS;
    if (!(waitMs >= 0)) throw new RangeError(`lock wait ${waitMs} ms is invalid: use 0 or more (default ${DEFAULT_WAIT_MS})`);
    const deadline = Date.now() + waitMs;
    for (let delay = 10; ; delay = Math.min(delay * 2, 250)) {
      const got = await this.tryLock(key, opts);
      if (got) return got;
      const left = deadline - Date.now();
      if (left <= 0) {
        const holder = (await this.#q<{ owner: string; expires_at: Date }>('SELECT owner, expires_at FROM certd_locks WHERE key = $1', [key])).rows[0];
        const who = holder ? `by ${describeOwner(holder.owner)} (lease until ${holder.expires_at.toISOString()})` : '(it was released just now)';
        throw new StoreLockedError(`lock ${key} is still held ${who} after waiting ${waitMs} ms; retry later — a lock whose holder died frees itself when its lease expires`);
      }
      await sleep(Math.min(delay / 2 + Math.random() * (delay / 2), left), opts.signal);
    }
  }

  /**
   * Takes the lease if free or expired, in one statement (exactly one contender wins), with a new
   * fencing token; else undefined at once.
   */
  async tryLock(key: string, opts: Omit<LockOptions, 'waitMs'> = {}): Promise<PgLock | undefined> {
    const k = checkStoreKey(key, 'lock key');
    const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
    if (!(leaseMs >= 30)) throw new RangeError(`lock lease ${leaseMs} ms is too short: use at least 30 ms (default ${DEFAULT_LEASE_MS})`);
    opts.signal?.throwIfAborted();
    return this.#take(k, leaseMs, opts.onLost);
  }

  async holder(key: string): Promise<LockHolder | undefined> {
    const row = (await this.#q<{ owner: string; expires_at: Date }>('SELECT owner, expires_at FROM certd_locks WHERE key = $1 AND expires_at > now()', [checkStoreKey(key, 'lock key')])).rows[0];
    return row ? { owner: row.owner, expiresAt: row.expires_at } : undefined;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#held].map((l) => l.release().catch(() => undefined)));
  }

  async #take(key: string, leaseMs: number, onLost?: (err: Error) => void): Promise<PgLock | undefined> {
    const owner = `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
    const row = (
      await this.#q<{ token: string }>(
        `INSERT INTO certd_locks (key, owner, token, expires_at) VALUES ($1, $2, nextval('certd_fence'), now() + $3 * interval '1 millisecond')
         ON CONFLICT (key) DO UPDATE SET owner = EXCLUDED.owner, token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
           WHERE certd_locks.expires_at <= now()
         RETURNING token`,
        [key, owner, leaseMs],
      )
    ).rows[0];
    if (!row) return undefined;
    const lock = new PgLock(key, row.token, leaseMs, {
      refresh: async () => ((await this.#q('UPDATE certd_locks SET expires_at = now() + $3 * interval \'1 millisecond\' WHERE key = $1 AND token = $2', [key, row.token, leaseMs])).rowCount ?? 0) > 0,
      remove: async () => void (await this.#q('DELETE FROM certd_locks WHERE key = $1 AND token = $2', [key, row.token])),
      lost: (err) => {
        this.#onWarning(err);
        onLost?.(err);
      },
      unconfirmed: (err, until) => this.#onWarning(this.#unavailable(`lock ${key} could not be refreshed (${err.message}); it holds until ${until.toISOString()}, retrying`, err)),
      released: (l) => this.#held.delete(l),
    });
    this.#held.add(lock);
    return lock;
  }
}

/**
 * The fence of a write, for its own statement: a CTE body selecting the fences' rows of
 * `certd_locks` that still carry their token with a running lease, FOR SHARE (a takeover's
 * UPDATE waits for the write to commit, and a write after a takeover sees the new token), and
 * the condition that all were found. Parameters are appended to `params`. Locally lost or
 * released fences are refused before any statement.
 */
export function fenceSql(fences: readonly Lock[] | undefined, params: unknown[], what: string): { cte: string; ok: string } | undefined {
  if (!fences || fences.length === 0) return undefined;
  const pairs: string[] = [];
  for (const f of fences) {
    if (!(f instanceof PgLock)) throw fencedError(what, f, 'is not a lock of this store');
    if (!f.held) throw fencedError(what, f, 'lost its lease');
    params.push(f.key, f.token);
    pairs.push(`($${params.length - 1}::text, $${params.length}::bigint)`);
  }
  return {
    cte: `fence AS (SELECT key FROM certd_locks WHERE (key, token) IN (${pairs.join(', ')}) AND expires_at > now() FOR SHARE)`,
    ok: `(SELECT count(*) FROM fence) = ${fences.length}`,
  };
}

interface LockHooks {
  /** Extends the lease; false when the row is no longer ours (taken over after it expired). */
  refresh(): Promise<boolean>;
  remove(): Promise<void>;
  lost(err: Error): void;
  /** A refresh failed while the lease still holds (the database away): said loudly, once per outage. */
  unconfirmed(err: Error, until: Date): void;
  released(lock: PgLock): void;
}

/**
 * A held lease. `token` grows with every grant of any lock (one sequence): a write fenced with it is
 * refused once a later holder exists. Refreshed at a third of the lease; a refresh that finds the
 * row gone means lost, and so does the lease's end without a confirmation — a timer, not the
 * refresh's answer, decides that, so a refresh hung on a partitioned network (up to the query
 * timeout, which may exceed the lease) cannot keep a holder writing past its lease. The holder is
 * told, and must stop writing.
 */
export class PgLock implements Lock {
  #timer: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #released: Promise<void> | undefined;
  #confirmedUntil = 0;
  #unconfirmed = false;
  #lastError: Error | undefined;

  constructor(
    readonly key: string,
    readonly token: string,
    private readonly leaseMs: number,
    private readonly hooks: LockHooks,
  ) {
    this.#confirm(Date.now());
    this.#schedule();
  }

  /** Whether this holder still knows its lease to be valid (a lost one stops writing at once). */
  get held(): boolean {
    return this.#released === undefined && Date.now() < this.#confirmedUntil;
  }

  release(): Promise<void> {
    this.#released ??= (async () => {
      clearTimeout(this.#timer);
      clearTimeout(this.#deadline);
      this.hooks.released(this);
      await this.hooks.remove();
    })();
    return this.#released;
  }

  #confirm(asked: number): void {
    // Ends a little before the database's lease (a tenth, at most 1 s): the next holder can
    // only start after it, so a holder that stops at its own end never overlaps with it, even
    // across some clock drift between hosts.
    this.#confirmedUntil = asked + this.leaseMs - Math.min(1_000, this.leaseMs / 10);
    clearTimeout(this.#deadline);
    this.#deadline = setTimeout(() => this.#lose(this.#lastError), Math.max(0, this.#confirmedUntil - Date.now()));
    this.#deadline.unref();
  }

  #schedule(): void {
    this.#timer = setTimeout(() => void this.#refresh(), Math.max(10, this.leaseMs / 3));
    this.#timer.unref();
  }

  async #refresh(): Promise<void> {
    if (this.#released || this.#confirmedUntil === 0) return;
    const asked = Date.now();
    const ok = await this.hooks.refresh().catch((err: Error) => err);
    if (this.#released || this.#confirmedUntil === 0) return;
    if (ok === true) {
      this.#lastError = undefined;
      this.#confirm(asked);
      this.#unconfirmed = false;
      this.#schedule();
      return;
    }
    if (ok instanceof Error) {
      // The database is away: try again while the lease still holds; the deadline timer ends it.
      this.#lastError = ok;
      if (!this.#unconfirmed) this.hooks.unconfirmed(ok, new Date(this.#confirmedUntil));
      this.#unconfirmed = true;
      this.#timer = setTimeout(() => void this.#refresh(), Math.max(10, Math.min(1_000, this.leaseMs / 10)));
      this.#timer.unref();
      return;
    }
    this.#lose(undefined, 'it was taken over after its lease ran out');
  }

  #lose(err: Error | undefined, why = `the database could not confirm it before its lease ran out (${err?.message ?? 'no answer in time'})`): void {
    if (this.#released || this.#confirmedUntil === 0) return;
    clearTimeout(this.#timer);
    clearTimeout(this.#deadline);
    this.#confirmedUntil = 0;
    this.hooks.released(this);
    this.hooks.lost(new StoreLockedError(`lock ${this.key} (token ${this.token}) is lost: ${why}; its holder stops writing`));
  }
}

