import type { RenewalWindow } from '../issuers/issuer.js';

/** Renewal timing rules. Pure functions: the scheduler feeds them the clock and randomness. */

export interface Lifetime {
  notBefore: number;
  notAfter: number;
}

/**
 * When to renew without ARI: `renewBeforeMs` before expiry when configured, else at two thirds of
 * the lifetime (a 90-day cert at day 60, a 6-day cert at day 4). Jitter spreads a fleet's
 * renewals: up to 1% of the lifetime, never more than an hour, only ever earlier.
 */
export function dueFromLifetime(l: Lifetime, random: number, renewBeforeMs?: number): number {
  const life = l.notAfter - l.notBefore;
  const due = renewBeforeMs !== undefined ? l.notAfter - renewBeforeMs : l.notBefore + (life * 2) / 3;
  const jitter = Math.min(life * 0.01, 3_600_000) * random;
  return Math.max(l.notBefore, due - jitter);
}

/** With ARI: a uniformly random point in the CA's window (RFC 9773 §4.2). */
export function dueFromWindow(w: RenewalWindow, random: number): number {
  const start = w.suggestedWindow.start.getTime();
  return start + (w.suggestedWindow.end.getTime() - start) * random;
}

export interface BackoffRules {
  baseMs: number;
  capMs: number;
}

/**
 * Next try after `attempts` failures: doubling from baseMs, capped, but never past the CA's
 * Retry-After and never so late the certificate expires first (the last try is before notAfter).
 */
export function nextRetry(now: number, attempts: number, rules: BackoffRules, notAfter: number, retryAfterMs?: number): number {
  const backoff = Math.min(rules.baseMs * 2 ** Math.max(0, attempts - 1), rules.capMs);
  const wait = Math.max(backoff, retryAfterMs ?? 0);
  const lastChance = notAfter - rules.baseMs;
  return Math.max(now + rules.baseMs, Math.min(now + wait, lastChance));
}
