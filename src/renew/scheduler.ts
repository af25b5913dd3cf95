import type { Logger } from 'pino';
import type { Issuer } from '../issuers/issuer.js';
import type { EnsureOptions } from '../service/cert-service.js';
import { dueFromWindow, type RenewalRules } from '../service/renewal-rules.js';
import type { CatalogChange, CertCatalog } from '../store/catalog.js';
import type { CertMeta, Store } from '../store/store.js';
import { systemClock, type Clock } from './clock.js';
import { DueQueue } from './due-queue.js';
import { DEFAULT_LANE_LIMITS, IssuerLane, type LaneLimits, type RenewalJob } from './issuer-lane.js';
import { noRenewalMetrics, type RenewalMetrics } from './metrics.js';
import { OrderBudget, type OrderLimit } from './order-budget.js';

export interface SchedulerOptions {
  /** Where the certificate being renewed is read (for ARI and `replaces`). */
  store: Pick<Store, 'loadCert'>;
  /** Every certificate's metadata; its changes (put, delete) are what the scheduler plans from. */
  catalog: Pick<CertCatalog, 'all' | 'get' | 'onChange'>;
  /** Renews (ensure with force); only that its promise settles matters here. */
  service: { ensure(names: string[], opts: EnsureOptions): Promise<unknown> };
  /** For their renewal windows (ARI), when they offer one. */
  issuers: ReadonlyMap<string, Pick<Issuer, 'renewalInfo'>>;
  /** What is renewed, when, and the backoff after a failure. */
  rules: RenewalRules;
  /** New orders allowed per issuer (ACME rateLimit); an issuer without one is not budgeted. */
  orderLimits?: ReadonlyMap<string, OrderLimit>;
  /** Concurrency per issuer (default 4 renewals + 4 ARI checks). */
  laneLimits?: LaneLimits;
  log: Logger;
  metrics?: RenewalMetrics;
  /** The longest the scheduler sleeps between looks at its queue (default 1 min); a look costs only what is due. */
  maxSleepMs?: number;
  random?: () => number;
  clock?: Clock;
}

interface Plan {
  fingerprint: string;
  notAfter: number;
  dueAt: number;
  source: 'ari' | 'lifetime';
  attempts: number;
  nextTryAt: number;
  /** When to ask the CA for its renewal window again (ARI Retry-After). */
  ariCheckAt?: number;
}

/** The longest a CA's 429 pauses an issuer (a Retry-After beyond it is not believed). */
const MAX_PAUSE_MS = 3_600_000;
/** A 429 without Retry-After. */
const DEFAULT_PAUSE_MS = 15 * 60_000;

/**
 * Keeps every renewable certificate renewed (`RenewalRules` say which, when and the backoff): a
 * due time per certificate (the CA's ARI window when it offers one, else the lifetime rule, with
 * jitter) in a heap fed by the catalog's changes, so a look costs what is due, never N. Due work
 * goes to its issuer's lane (bounded concurrency, the order budget, the CA's 429 pause), so one
 * issuer never holds up another. Failures retry with capped exponential backoff that honours
 * Retry-After, never a tight loop. The old certificate keeps serving until the new one is deployed.
 * Not for concurrent start/stop.
 */
export class RenewalScheduler {
  private readonly plans = new Map<string, Plan>();
  /** id → when to look at it next (due, retry or ARI check). */
  private readonly queue = new DueQueue<string>();
  /** Certificates being renewed now, and those that came due again meanwhile (handed over at the end). */
  private readonly renewing = new Set<string>();
  private readonly dueWhileRenewing = new Set<string>();
  private readonly lanes = new Map<string, IssuerLane>();
  private readonly metrics: RenewalMetrics;
  private readonly random: () => number;
  private readonly clock: Clock;
  private cancelTimer?: () => void;
  private timerAt = Infinity;
  private unsubscribe?: () => void;
  private stopped = false;

  constructor(private readonly o: SchedulerOptions) {
    this.metrics = o.metrics ?? noRenewalMetrics;
    this.random = o.random ?? Math.random;
    this.clock = o.clock ?? systemClock;
  }

  /**
   * Plans every renewable certificate once (O(N), the only pass over all), then follows changes.
   * Also after a stop: a replica that takes the cluster-wide work again plans afresh.
   */
  start(): void {
    if (this.unsubscribe) return;
    this.stopped = false;
    for (const id of this.plans.keys()) this.queue.delete(id);
    this.plans.clear();
    this.lanes.clear();
    this.unsubscribe = this.o.catalog.onChange((change) => this.changed(change));
    const now = this.clock.now();
    for (const meta of this.o.catalog.all()) if (this.o.rules.renewable(meta)) this.plan(meta, now);
    this.arm();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.cancelTimer?.();
    await Promise.all([...this.lanes.values()].map((lane) => lane.stop()));
  }

  /** When each certificate is planned to renew (for status and tests). O(N): not for hot paths. */
  dueTimes(): Map<string, { dueAt: number; source: Plan['source']; attempts: number; nextTryAt: number }> {
    return new Map([...this.plans].map(([id, p]) => [id, { dueAt: p.dueAt, source: p.source, attempts: p.attempts, nextTryAt: p.nextTryAt }]));
  }

  /** Each issuer's lane: renewals running, the most at once, waiting, paused until (for the bench and status). */
  laneStats(): Map<string, { renewing: number; peakRenewing: number; waiting: number; pausedUntil: number }> {
    return new Map([...this.lanes].map(([id, l]) => [id, { renewing: l.renewing, peakRenewing: l.peakRenewing, waiting: l.waiting, pausedUntil: l.pausedUntil }]));
  }

  private changed({ id, meta }: CatalogChange): void {
    if (this.stopped) return;
    if (!meta || !this.o.rules.renewable(meta)) {
      this.forget(id);
    } else if (this.plans.get(id)?.fingerprint !== meta.fingerprint) {
      // A new certificate, or this one renewed (by us, `renew NAME` or another path): plan afresh.
      this.forget(id);
      this.plan(meta, this.clock.now());
    }
    this.arm();
  }

  private forget(id: string): void {
    const plan = this.plans.get(id);
    if (!plan) return;
    this.plans.delete(id);
    this.queue.delete(id);
    for (const lane of this.lanes.values()) lane.withdraw(id);
  }

  private plan(meta: CertMeta, now: number): void {
    const plan: Plan = {
      fingerprint: meta.fingerprint,
      notAfter: Date.parse(meta.notAfter),
      dueAt: this.o.rules.dueAt(meta, this.random()),
      source: 'lifetime',
      attempts: 0,
      nextTryAt: 0,
      ariCheckAt: this.o.issuers.get(meta.issuer)?.renewalInfo ? now : undefined,
    };
    this.plans.set(meta.id, plan);
    this.requeue(meta.id, plan);
  }

  private requeue(id: string, plan: Plan): void {
    this.queue.set(id, Math.min(Math.max(plan.dueAt, plan.nextTryAt), plan.ariCheckAt ?? Infinity));
  }

  /** Sets the timer for the earliest entry (at most maxSleepMs ahead), unless one is set earlier already. */
  private arm(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    const next = Math.min(this.queue.peek()?.time ?? Infinity, now + (this.o.maxSleepMs ?? 60_000));
    if (next >= this.timerAt) return;
    this.cancelTimer?.();
    this.timerAt = next;
    this.cancelTimer = this.clock.setTimer(() => {
      this.timerAt = Infinity;
      this.cancelTimer = undefined;
      this.tick();
    }, Math.max(0, Math.ceil(next - now)));
  }

  /** Hands what is due to its issuer's lane: O(due · log N). */
  private tick(): void {
    const now = this.clock.now();
    for (const id of this.queue.popDue(now)) {
      const plan = this.plans.get(id);
      const meta = this.o.catalog.get(id);
      if (!plan || !meta) continue;
      if (this.renewing.has(id)) {
        // Its new certificate came due while the renewal that made it finishes (a short lifetime):
        // offered then, not now — an ensure joining the one in flight would change nothing.
        this.dueWhileRenewing.add(id);
        continue;
      }
      const lane = this.lane(meta.issuer);
      if (plan.ariCheckAt !== undefined && plan.ariCheckAt <= now) lane.offerAriCheck(id);
      else lane.offerRenewal({ id, expiresAt: plan.notAfter, exempt: plan.source === 'ari' && this.o.orderLimits?.get(meta.issuer)?.ariExempt === true });
    }
    this.arm();
  }

  private lane(issuer: string): IssuerLane {
    let lane = this.lanes.get(issuer);
    if (!lane) {
      const limit = this.o.orderLimits?.get(issuer);
      lane = new IssuerLane({
        issuer,
        limits: this.o.laneLimits ?? DEFAULT_LANE_LIMITS,
        budget: limit ? new OrderBudget(limit) : undefined,
        clock: this.clock,
        renew: (job) => this.renew(job, lane!),
        checkAri: (id) => this.askAri(id),
        onShortfall: (id, count, previous) => this.shortfall(id, count, previous),
      });
      this.lanes.set(issuer, lane);
    }
    return lane;
  }

  /** The metric follows every change; the log only when a shortfall starts and when it ends (no warning every 15 min). */
  private shortfall(issuer: string, count: number, previous: number): void {
    this.metrics.budgetShortfall(issuer, count);
    if ((count > 0) === (previous > 0)) return;
    if (count > 0) {
      this.o.log.warn(
        { issuer, shortfall: count },
        `issuer ${issuer}: ${count} due renewals cannot get an order before they expire at its rateLimit; the soonest-expiring go first: raise rateLimit if the CA allows it, use ARI, or move certificates to another issuer`,
      );
    } else {
      this.o.log.info({ issuer }, `issuer ${issuer}: its order budget covers every due renewal again`);
    }
  }

  /** Moves the due time into the CA's window when it offers one; its absence keeps our own plan. */
  private async askAri(id: string): Promise<void> {
    const meta = this.o.catalog.get(id);
    const plan = this.plans.get(id);
    if (!meta || !plan) return;
    const issuer = this.o.issuers.get(meta.issuer);
    try {
      const cert = await this.o.store.loadCert(id);
      const window = cert && issuer?.renewalInfo ? await issuer.renewalInfo(cert.certPem) : undefined;
      if (!window) {
        plan.ariCheckAt = undefined;
      } else {
        plan.dueAt = dueFromWindow(window, this.random());
        plan.source = 'ari';
        plan.ariCheckAt = this.clock.now() + window.retryAfterMs;
      }
    } catch (err) {
      plan.ariCheckAt = this.clock.now() + this.o.rules.backoff.capMs;
      this.o.log.warn({ cert: id, err: (err as Error).message }, 'renewal info (ARI) unavailable; keeping the lifetime schedule');
    }
    if (this.plans.get(id) !== plan) return;
    this.requeue(id, plan);
    this.arm();
  }

  private async renew(job: RenewalJob, lane: IssuerLane): Promise<void> {
    const meta = this.o.catalog.get(job.id);
    const plan = this.plans.get(job.id);
    if (!meta || !plan || plan.fingerprint !== meta.fingerprint) return;
    this.renewing.add(job.id);
    try {
      await this.renewNow(meta, plan, job, lane);
    } finally {
      this.renewing.delete(job.id);
      const next = this.plans.get(job.id);
      if (this.dueWhileRenewing.delete(job.id) && next) {
        this.requeue(job.id, next);
        this.arm();
      }
    }
  }

  private async renewNow(meta: CertMeta, plan: Plan, job: RenewalJob, lane: IssuerLane): Promise<void> {
    try {
      const previous = await this.o.store.loadCert(meta.id);
      await this.o.service.ensure(meta.names, { issuer: meta.issuer, origin: meta.origin, force: true, replaces: previous?.certPem });
      // The store's save reached the catalog, which planned the new certificate (changed()).
      this.metrics.renewal(meta.id, 'ok', 'scheduled');
      if (this.plans.get(job.id) === plan) {
        // Nothing new reached the catalog: look again after the first backoff step, not in a loop.
        plan.nextTryAt = this.clock.now() + this.o.rules.backoff.baseMs;
        this.requeue(job.id, plan);
        this.arm();
      }
    } catch (err) {
      if (this.plans.get(job.id) !== plan) return;
      const now = this.clock.now();
      const retryAfterMs = (err as { retryAfterMs?: number }).retryAfterMs;
      if ((err as { code?: string }).code === 'CERTD_E_ACME_RATE_LIMITED') {
        // The CA's limit, not this certificate's fault: the issuer waits, the renewal keeps its place.
        const until = now + Math.min(retryAfterMs ?? DEFAULT_PAUSE_MS, MAX_PAUSE_MS);
        if (until > lane.pausedUntil) {
          this.o.log.warn({ issuer: meta.issuer, until: new Date(until).toISOString() }, `issuer ${meta.issuer} is rate limited by its CA: its renewals wait until ${new Date(until).toISOString()}; other issuers go on`);
        }
        lane.pause(until);
        lane.offerRenewal(job);
        return;
      }
      plan.attempts++;
      plan.nextTryAt = this.o.rules.nextTry(now, plan.attempts, plan.notAfter, retryAfterMs);
      this.requeue(job.id, plan);
      this.arm();
      this.metrics.renewal(meta.id, 'error', 'scheduled');
      this.o.log.error(
        {
          cert: meta.id,
          attempt: plan.attempts,
          err: (err as Error).message,
          code: (err as { code?: string }).code,
          nextTry: new Date(plan.nextTryAt).toISOString(),
          notAfter: meta.notAfter,
        },
        `renewal of ${meta.id} failed; the current certificate keeps serving until ${meta.notAfter}; next try ${new Date(plan.nextTryAt).toISOString()}`,
      );
    }
  }
}
