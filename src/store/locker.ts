import { errorKind } from '../core/errors.js';

/**
 * The locker contract (as CertMagic splits Locker from Storage): named locks with a lease,
 * refreshed by the holder while held, each grant with a fencing token larger than every token
 * granted before it on the same store. A write fenced with a lock (see storage.ts) is refused once
 * that lock is no longer its holder's, so a holder that lost its lease cannot write.
 */
export interface Lock {
  readonly key: string;
  /** Decimal; grows with every grant of any lock of the store (compare with compareTokens). */
  readonly token: string;
  /** Whether this holder still knows its lease to be valid (false once lost or released). */
  readonly held: boolean;
  /** Releases the lock; safe to call twice. */
  release(): Promise<void>;
}

export interface LockOptions {
  /** How long the lock stays valid without a refresh; the holder refreshes it at a third of this. */
  leaseMs?: number;
  /** How long lock() waits for a held lock before failing with StoreLockedError. */
  waitMs?: number;
  signal?: AbortSignal;
  /** Told once if the lease is lost while held (taken over, or not confirmed in time): stop what the lock guards. */
  onLost?: (err: Error) => void;
}

/** Who holds a lock now, as a refusal names it. */
export interface LockHolder {
  /** hostname:pid:random, unique per grant. */
  owner: string;
  expiresAt: Date;
}

export interface Locker {
  /** Waits for the lock (bounded by waitMs), or throws StoreLockedError naming the holder. */
  lock(key: string, opts?: LockOptions): Promise<Lock>;
  /** Takes the lock if free (or its lease ran out), else returns undefined at once. */
  tryLock(key: string, opts?: Omit<LockOptions, 'waitMs'>): Promise<Lock | undefined>;
  /** The current holder, if any lease is running. */
  holder(key: string): Promise<LockHolder | undefined>;
  /** Releases every lock this locker still holds. */
  close(): Promise<void>;
}

/** A fenced write was refused: the lock it was fenced with is no longer its holder's (lease lost, taken over). Nothing was written. */
export class FencedWriteError extends errorKind('CERTD_E_STORE_FENCED', 'conflict') {}

/** Orders fencing tokens (decimal strings of any length). */
export function compareTokens(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** "pid 1234 on host db-1" for an owner (hostname:pid:random). */
export function describeOwner(owner: string): string {
  const [host, pid] = owner.split(':');
  return `pid ${pid} on host ${host}`;
}

/** The refusal of a fenced write, naming the lock and why. */
export function fencedError(what: string, lock: Lock, why: string): FencedWriteError {
  return new FencedWriteError(`refused to write ${what}: lock ${lock.key} (token ${lock.token}) ${why}, so another holder may be at work; nothing was written`);
}
