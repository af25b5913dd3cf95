import { sleep } from '../../core/async.js';
import { AcmeTimeoutError } from './problems.js';

/**
 * Parses Retry-After (delta-seconds or an HTTP-date) into milliseconds from `now`; undefined when
 * absent or unreadable. Pure.
 */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export interface PollOptions {
  signal?: AbortSignal;
  /** Total bound; AcmeTimeoutError after it. */
  timeoutMs: number;
  /** What is being waited for, for the timeout message ("authorization for a.example"). */
  what: string;
  /**
   * First wait when the CA gives no Retry-After (default 50 ms), growing ×1.5 up to maxDelayMs:
   * local CAs validate in milliseconds, public ones in seconds, and ~10 polls for those is cheap.
   */
  initialDelayMs?: number;
  /** Cap on our own backoff (default 5 s) and on a CA's Retry-After (default 60 s). */
  maxDelayMs?: number;
  maxRetryAfterMs?: number;
}

/**
 * Calls `check` until `done` says so, waiting the CA's Retry-After between calls when it sent one
 * (clamped: a CA asking for an hour would otherwise stall us past any bound), else a growing
 * backoff. Never waits past the deadline; a check still not done at the deadline is a timeout.
 */
export async function pollUntil<T>(
  check: (signal?: AbortSignal) => Promise<{ value: T; retryAfterMs?: number }>,
  done: (value: T) => boolean,
  opts: PollOptions,
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  const maxDelay = opts.maxDelayMs ?? 5_000;
  const maxRetryAfter = opts.maxRetryAfterMs ?? 60_000;
  let backoff = opts.initialDelayMs ?? 50;
  for (;;) {
    const { value, retryAfterMs } = await check(opts.signal);
    if (done(value)) return value;
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      throw new AcmeTimeoutError(`${opts.what} did not complete within ${Math.round(opts.timeoutMs / 1000)} s`);
    }
    const wanted = retryAfterMs !== undefined ? Math.min(Math.max(retryAfterMs, 50), maxRetryAfter) : backoff;
    backoff = Math.min(backoff * 1.5, maxDelay);
    await sleep(Math.min(wanted, remaining), opts.signal);
  }
}
