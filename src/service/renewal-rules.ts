import { UsageError } from '../core/errors.js';
import type { RenewalWindow } from '../issuers/issuer.js';
import type { CertMeta } from '../store/store.js';

/**
 * When and what to renew, decided here only: the scheduler plans with it, CertService asks it
 * whether a stored certificate can be reused, and `renew NAME…|--all` (CLI and API) asks it what
 * may be renewed. The timing rules are pure functions; the scheduler feeds them the clock and
 * randomness.
 */

export interface Lifetime {
  notBefore: number;
  notAfter: number;
}

/**
 * When to renew without ARI: `renewBeforeMs` before expiry when configured, else at two thirds of
 * the lifetime (a 90-day cert at day 60, a 6-day cert at day 4). Jitter spreads a fleet's
 * renewals uniformly over the sixth of the lifetime before that point (a 45-day cert: days 22.5
 * to 30), only ever earlier and never into the first half of the time before it, so 100,000
 * certificates issued on one day renew over a week, not in one hour.
 */
export function dueFromLifetime(l: Lifetime, random: number, renewBeforeMs?: number): number {
  const life = l.notAfter - l.notBefore;
  const due = renewBeforeMs !== undefined ? l.notAfter - renewBeforeMs : l.notBefore + (life * 2) / 3;
  const span = Math.max(0, Math.min(life / 6, (due - l.notBefore) / 2));
  return Math.max(l.notBefore, due - span * random);
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

export interface RenewalRulesOptions {
  /** The configured issuers: a certificate of any other (imported, or its issuer since removed) is not ours to renew. */
  issuerIds: Iterable<string>;
  /** `renewBefore` from config: renew this long before expiry instead of at two thirds of the lifetime. */
  renewBeforeMs?: number;
  /** Retry backoff after a failed renewal (default 1 min doubling to 6 h). */
  backoff?: BackoffRules;
}

const DEFAULT_BACKOFF: BackoffRules = { baseMs: 60_000, capMs: 6 * 3_600_000 };

type Renewable = Pick<CertMeta, 'id' | 'issuer' | 'origin'>;

/** The renewal rules of one config, built once by the assembly. Immutable; safe to share. */
export class RenewalRules {
  readonly backoff: BackoffRules;
  private readonly issuerIds: ReadonlySet<string>;

  constructor(private readonly o: RenewalRulesOptions) {
    this.issuerIds = new Set(o.issuerIds);
    this.backoff = o.backoff ?? DEFAULT_BACKOFF;
  }

  /** Issued by a configured issuer, not imported nor brought by a source. */
  renewable(meta: Renewable): boolean {
    // Asked for every certificate on every status page view: no error object (and stack) each.
    return this.refusal(meta) === undefined;
  }

  /** The refusal `renew NAME` gives for a certificate that is not `renewable`. */
  whyNotRenewable(meta: Renewable): UsageError | undefined {
    const why = this.refusal(meta);
    if (why === 'imported') return new UsageError(`"${meta.id}" was imported (issuer "${meta.issuer}"): import a new one instead`);
    if (why === 'issuer-gone') return new UsageError(`"${meta.id}" was issued by "${meta.issuer}", which the config no longer has: issue it again with a configured issuer`);
    return undefined;
  }

  private refusal(meta: Renewable): 'imported' | 'issuer-gone' | undefined {
    if (meta.origin === 'import' || meta.origin === 'source') return 'imported';
    if (!this.issuerIds.has(meta.issuer)) return 'issuer-gone';
    return undefined;
  }

  /** The due time by lifetime (or renewBefore); `random` in [0, 1) moves it earlier (jitter). */
  dueAt(meta: Pick<CertMeta, 'notBefore' | 'notAfter'>, random: number): number {
    return dueFromLifetime({ notBefore: Date.parse(meta.notBefore), notAfter: Date.parse(meta.notAfter) }, random, this.o.renewBeforeMs);
  }

  /** Past its renewal point (without jitter): a fresh certificate is issued instead of reusing it. */
  isDue(meta: Pick<CertMeta, 'notBefore' | 'notAfter'>, now = Date.now()): boolean {
    return now >= this.dueAt(meta, 0);
  }

  /** The next try after `attempts` failed renewals (see nextRetry). */
  nextTry(now: number, attempts: number, notAfter: number, retryAfterMs?: number): number {
    return nextRetry(now, attempts, this.backoff, notAfter, retryAfterMs);
  }
}
