import type { Clock } from './clock.js';
import { DueQueue } from './due-queue.js';
import { budgetShortfall, type OrderBudget } from './order-budget.js';

/** How much one issuer may do at once; each issuer has its own, so a slow one never holds up another. */
export interface LaneLimits {
  renewals: number;
  ariChecks: number;
}

export const DEFAULT_LANE_LIMITS: LaneLimits = { renewals: 4, ariChecks: 4 };

/** A renewal offered to a lane: who, when it expires (soonest first), and whether it needs an order from the budget. */
export interface RenewalJob {
  id: string;
  expiresAt: number;
  /** ARI-window renewal the CA does not count (rateLimit.ariExempt). */
  exempt: boolean;
}

export interface IssuerLaneOptions {
  issuer: string;
  limits: LaneLimits;
  /** Absent: the issuer counts no orders (a local CA). */
  budget?: OrderBudget;
  clock: Clock;
  renew: (job: RenewalJob) => Promise<void>;
  checkAri: (id: string) => Promise<void>;
  /** Called when the number of waiting renewals the budget cannot start before they expire changes. */
  onShortfall: (issuer: string, count: number, previous: number) => void;
}

/** How often (clock time) the shortfall is estimated again while renewals wait on the budget. */
const SHORTFALL_EVERY_MS = 15 * 60_000;

/**
 * One issuer's work: renewals (soonest-expiring first, each non-exempt one taking an order from
 * the budget) and ARI checks, each bounded in concurrency; a pause (the CA's 429) stops only
 * this lane's renewals. Jobs are synchronous to offer; their work runs as promises the lane
 * tracks so stop() can wait for them. Not for concurrent use from outside the event loop.
 */
export class IssuerLane {
  readonly #waiting = new DueQueue<string>();
  readonly #waitingExempt = new DueQueue<string>();
  readonly #jobs = new Map<string, RenewalJob>();
  /** ARI checks in offer order (a Set keeps insertion order and drops duplicates, O(1) both ends). */
  readonly #ari = new Set<string>();
  readonly #running = new Set<Promise<void>>();
  #renewing = 0;
  #checking = 0;
  #pausedUntil = 0;
  /** Pauses so far; while the last one is not followed by a renewal that met no 429, one renewal at a time probes the CA. */
  #pauses = 0;
  #probing = false;
  #cancelWake?: () => void;
  #wakeAt = Infinity;
  #shortfall = 0;
  #shortfallAt = -Infinity;
  #peak = 0;
  #stopped = false;

  constructor(private readonly o: IssuerLaneOptions) {}

  /** Renewals running now / the most that ever ran at once (for the bench). */
  get renewing(): number {
    return this.#renewing;
  }
  get peakRenewing(): number {
    return this.#peak;
  }
  /** Renewals waiting for a slot, the budget or the end of a pause. */
  get waiting(): number {
    return this.#jobs.size;
  }

  offerRenewal(job: RenewalJob): void {
    this.withdraw(job.id);
    this.#jobs.set(job.id, job);
    (job.exempt ? this.#waitingExempt : this.#waiting).set(job.id, job.expiresAt);
    this.#pump();
  }

  offerAriCheck(id: string): void {
    if (this.#ari.has(id)) return;
    this.#ari.add(id);
    this.#pump();
  }

  /** Takes back a waiting renewal (the certificate changed or went); a running one finishes. */
  withdraw(id: string): void {
    if (!this.#jobs.delete(id)) return;
    this.#waiting.delete(id);
    this.#waitingExempt.delete(id);
  }

  /** The CA said to wait (429): no renewal of this issuer starts before `until`. */
  pause(until: number): void {
    this.#pausedUntil = Math.max(this.#pausedUntil, until);
    this.#pauses++;
    this.#probing = true;
    this.#pump();
  }

  get pausedUntil(): number {
    return this.#pausedUntil;
  }

  /** Starts nothing more and waits for what runs. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancelWake?.();
    await Promise.allSettled([...this.#running]);
  }

  #pump(): void {
    if (this.#stopped) return;
    const now = this.o.clock.now();
    while (this.#checking < this.o.limits.ariChecks && this.#ari.size > 0) {
      const id = this.#ari.values().next().value!;
      this.#ari.delete(id);
      this.#checking++;
      this.#track(this.o.checkAri(id), () => this.#checking--);
    }
    let wakeAt = Infinity;
    if (now < this.#pausedUntil) {
      if (this.#jobs.size > 0) wakeAt = this.#pausedUntil;
    } else {
      // After a 429 the CA's window frees one order at a time: one renewal probes, not four.
      const limit = this.#probing ? 1 : this.o.limits.renewals;
      while (this.#renewing < limit) {
        const job = this.#next(now);
        if (!job) break;
        this.withdraw(job.id);
        this.#renewing++;
        this.#peak = Math.max(this.#peak, this.#renewing);
        const pauses = this.#pauses;
        this.#track(this.o.renew(job), () => {
          this.#renewing--;
          if (this.#pauses === pauses) this.#probing = false;
        });
      }
      // Waiting on the budget (not on a running renewal, whose end pumps again): wake when it frees.
      const freeAt = this.o.budget?.nextFreeAt(now) ?? now;
      if (this.#waiting.size > 0 && this.#renewing < limit && freeAt > now) wakeAt = freeAt;
    }
    this.#estimateShortfall(now);
    this.#armWake(wakeAt, now);
  }

  /** The soonest-expiring renewal that may start now: exempt ones never wait on the budget. */
  #next(now: number): RenewalJob | undefined {
    const exempt = this.#waitingExempt.peek();
    const counted = this.#waiting.peek();
    const countedMayStart = counted !== undefined && (!this.o.budget || this.o.budget.nextFreeAt(now) <= now);
    let pick: string | undefined;
    if (exempt && (!countedMayStart || exempt.time <= counted!.time)) pick = exempt.key;
    else if (countedMayStart) {
      this.o.budget?.tryTake(now);
      pick = counted!.key;
    }
    return pick === undefined ? undefined : this.#jobs.get(pick);
  }

  #estimateShortfall(now: number): void {
    const budget = this.o.budget;
    let count = 0;
    if (budget && this.#waiting.size > 0) {
      if (now - this.#shortfallAt < SHORTFALL_EVERY_MS) return;
      this.#shortfallAt = now;
      count = budgetShortfall(budget, this.#waiting.times(), Math.max(now, this.#pausedUntil));
    }
    const previous = this.#shortfall;
    if (count === previous) return;
    this.#shortfall = count;
    this.o.onShortfall(this.o.issuer, count, previous);
  }

  #armWake(at: number, now: number): void {
    if (at === Infinity || at >= this.#wakeAt) return;
    this.#cancelWake?.();
    this.#wakeAt = at;
    this.#cancelWake = this.o.clock.setTimer(() => {
      this.#wakeAt = Infinity;
      this.#cancelWake = undefined;
      this.#pump();
    }, Math.max(0, Math.ceil(at - now)));
  }

  #track(work: Promise<void>, done: () => void): void {
    const p: Promise<void> = work
      .catch(() => undefined)
      .finally(() => {
        done();
        this.#running.delete(p);
        this.#pump();
      });
    this.#running.add(p);
  }
}
