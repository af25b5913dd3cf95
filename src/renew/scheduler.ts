import type { Logger } from 'pino';
import { forEachLimited } from '../core/async.js';
import type { Issuer } from '../issuers/issuer.js';
import type { CertService } from '../service/cert-service.js';
import { dueFromWindow, type RenewalRules } from '../service/renewal-rules.js';
import type { CertMeta, Store } from '../store/store.js';
import { noRenewalMetrics, type RenewalMetrics } from './metrics.js';

export interface SchedulerOptions {
  store: Store;
  service: CertService;
  /** For their renewal windows (ARI), when they offer one. */
  issuers: ReadonlyMap<string, Issuer>;
  /** What is renewed, when, and the backoff after a failure. */
  rules: RenewalRules;
  log: Logger;
  metrics?: RenewalMetrics;
  /** The longest the scheduler sleeps between looks at the store (default 1 min). */
  maxSleepMs?: number;
  random?: () => number;
}

interface Plan {
  fingerprint: string;
  dueAt: number;
  source: 'ari' | 'lifetime';
  attempts: number;
  nextTryAt: number;
  /** When to ask the CA for its renewal window again (ARI Retry-After). */
  ariCheckAt?: number;
}

const CONCURRENT_RENEWALS = 4;

/**
 * Keeps every renewable certificate renewed (`RenewalRules` say which, when and the backoff): a
 * due time per certificate (the CA's ARI window when it offers one, else the lifetime rule, with
 * jitter), retries with capped exponential backoff that honours Retry-After, and never a tight
 * loop. The old certificate keeps serving until the new one is deployed.
 * Not for concurrent start/stop; ticks never overlap.
 */
export class RenewalScheduler {
  private readonly plans = new Map<string, Plan>();
  private readonly metrics: RenewalMetrics;
  private readonly random: () => number;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;

  constructor(private readonly o: SchedulerOptions) {
    this.metrics = o.metrics ?? noRenewalMetrics;
    this.random = o.random ?? Math.random;
  }

  /** Also after a stop (a replica that takes the cluster-wide work again). */
  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** When each certificate is planned to renew (for status and tests). */
  dueTimes(): Map<string, { dueAt: number; source: Plan['source']; attempts: number; nextTryAt: number }> {
    return new Map([...this.plans].map(([id, p]) => [id, { dueAt: p.dueAt, source: p.source, attempts: p.attempts, nextTryAt: p.nextTryAt }]));
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => (this.running = undefined));
    }, ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    const now = Date.now();
    let next = now + (this.o.maxSleepMs ?? 60_000);
    const due: CertMeta[] = [];
    try {
      const metas = (await this.o.store.listCerts()).filter((m) => this.o.rules.renewable(m));
      const ids = new Set(metas.map((m) => m.id));
      for (const id of this.plans.keys()) if (!ids.has(id)) this.plans.delete(id);
      for (const meta of metas) {
        const plan = await this.planFor(meta, now);
        const at = Math.max(plan.dueAt, plan.nextTryAt);
        if (at <= now) due.push(meta);
        else next = Math.min(next, at, plan.ariCheckAt ?? Infinity);
      }
      await forEachLimited(due, CONCURRENT_RENEWALS, (meta) => this.renew(meta));
    } catch (err) {
      this.o.log.error({ err: (err as Error).message }, 'renewal scheduler pass failed; trying again later');
    }
    // A renewed certificate gets a fresh plan next pass; failed ones wait for their backoff.
    for (const meta of due) {
      const plan = this.plans.get(meta.id);
      if (plan) next = Math.min(next, plan.nextTryAt);
    }
    this.schedule(Math.max(due.length > 0 ? 0 : 50, next - Date.now()));
  }

  private async planFor(meta: CertMeta, now: number): Promise<Plan> {
    let plan = this.plans.get(meta.id);
    if (!plan || plan.fingerprint !== meta.fingerprint) {
      plan = {
        fingerprint: meta.fingerprint,
        dueAt: this.o.rules.dueAt(meta, this.random()),
        source: 'lifetime',
        attempts: 0,
        nextTryAt: 0,
        ariCheckAt: this.o.issuers.get(meta.issuer)?.renewalInfo ? now : undefined,
      };
      this.plans.set(meta.id, plan);
    }
    if (plan.ariCheckAt !== undefined && plan.ariCheckAt <= now) await this.askAri(meta, plan, now);
    return plan;
  }

  /** Moves the due time into the CA's window when it offers one; its absence keeps our own plan. */
  private async askAri(meta: CertMeta, plan: Plan, now: number): Promise<void> {
    const issuer = this.o.issuers.get(meta.issuer)!;
    try {
      const cert = await this.o.store.loadCert(meta.id);
      const window = cert ? await issuer.renewalInfo!(cert.certPem) : undefined;
      if (!window) {
        plan.ariCheckAt = undefined;
        return;
      }
      plan.dueAt = dueFromWindow(window, this.random());
      plan.source = 'ari';
      plan.ariCheckAt = now + window.retryAfterMs;
    } catch (err) {
      plan.ariCheckAt = now + this.o.rules.backoff.capMs;
      this.o.log.warn({ cert: meta.id, err: (err as Error).message }, 'renewal info (ARI) unavailable; keeping the lifetime schedule');
    }
  }

  private async renew(meta: CertMeta): Promise<void> {
    const plan = this.plans.get(meta.id)!;
    try {
      const previous = await this.o.store.loadCert(meta.id);
      await this.o.service.ensure(meta.names, { issuer: meta.issuer, origin: meta.origin, force: true, replaces: previous?.certPem });
      this.plans.delete(meta.id);
      this.metrics.renewal(meta.id, 'ok', 'scheduled');
    } catch (err) {
      plan.attempts++;
      const now = Date.now();
      const retryAfterMs = (err as { retryAfterMs?: number }).retryAfterMs;
      plan.nextTryAt = this.o.rules.nextTry(now, plan.attempts, Date.parse(meta.notAfter), retryAfterMs);
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
