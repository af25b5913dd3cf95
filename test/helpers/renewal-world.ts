import type { Logger } from 'pino';
import { silentLogger } from '../../src/core/log.js';
import { AcmeRateLimitedError } from '../../src/issuers/acme/problems.js';
import type { RenewalWindow } from '../../src/issuers/issuer.js';
import type { RenewalMetrics } from '../../src/renew/metrics.js';
import type { OrderLimit } from '../../src/renew/order-budget.js';
import { RenewalScheduler, type SchedulerOptions } from '../../src/renew/scheduler.js';
import type { EnsureOptions } from '../../src/service/cert-service.js';
import { RenewalRules } from '../../src/service/renewal-rules.js';
import { CertCatalog } from '../../src/store/catalog.js';
import type { CertMeta, StoredCert } from '../../src/store/store.js';
import { SimClock } from './sim-clock.js';

/**
 * A simulated world for the renewal scheduler, on a SimClock: a real CertCatalog of metadata, and
 * fake CAs that take `issueMs` per order, enforce a sliding order limit with a 429 and
 * Retry-After (as Let's Encrypt does), may offer ARI windows, and may fail on purpose. Counts
 * what the scheduler did: every order's time, concurrency per CA, renewals that came after the
 * old certificate had expired. For unit tests and bench/renewal-storm.ts (not a CA protocol fake:
 * the ACME client and Pebble are tested elsewhere).
 */
export interface SimCaSpec {
  id: string;
  lifetimeMs: number;
  issueMs: number;
  /** The CA's own limit on new orders (a 429 beyond it). */
  limit?: { orders: number; perMs: number };
  /** The ARI window of a certificate, when the CA offers one for it; renewals in it with `replaces` are not counted. */
  ari?: (meta: CertMeta) => { start: number; end: number } | undefined;
  ariRetryAfterMs?: number;
  /** Fails this order on purpose (a CA outage, a killed renewal). */
  fail?: (id: string, now: number) => boolean;
}

export class SimCa {
  /** Times of our orders the CA counted. */
  readonly counted: number[] = [];
  /** Times of every order it counted (ours and other clients' of the account). */
  readonly #all: number[] = [];
  /** Times of our orders it did not count (ARI renewals). */
  readonly exempt: number[] = [];
  rateLimited = 0;
  failed = 0;
  issued = 0;
  running = 0;
  peakRunning = 0;
  #windowStart = 0;

  constructor(
    readonly spec: SimCaSpec,
    private readonly clock: SimClock,
  ) {}

  /** Another client of the same account places `n` orders now (they count against the limit). */
  consume(n: number): void {
    for (let i = 0; i < n; i++) this.#all.push(this.clock.now());
  }

  /** Places one order, or throws what the CA says. */
  order(old: CertMeta | undefined, replaces: boolean): void {
    const now = this.clock.now();
    const window = old && replaces ? this.spec.ari?.(old) : undefined;
    if (window && now >= window.start) {
      this.exempt.push(now);
      return;
    }
    const limit = this.spec.limit;
    if (limit) {
      while (this.#windowStart < this.#all.length && this.#all[this.#windowStart]! <= now - limit.perMs) this.#windowStart++;
      if (this.#all.length - this.#windowStart >= limit.orders) {
        this.rateLimited++;
        const retryAfterMs = this.#all[this.#windowStart]! + limit.perMs - now;
        throw new AcmeRateLimitedError(`too many new orders recently: retry after ${Math.ceil(retryAfterMs / 1000)} s`, { retryAfterMs });
      }
    }
    this.counted.push(now);
    this.#all.push(now);
  }
}

export interface WorldOptions {
  cas: SimCaSpec[];
  orderLimits?: Map<string, OrderLimit>;
  start?: number;
  log?: Logger;
  scheduler?: Partial<SchedulerOptions>;
}

export class RenewalWorld {
  readonly clock: SimClock;
  readonly catalog = new CertCatalog();
  readonly cas = new Map<string, SimCa>();
  readonly scheduler: RenewalScheduler;
  /** Renewals whose new certificate came after the old one had expired. */
  missed = 0;
  readonly shortfalls: { issuer: string; count: number; at: number }[] = [];
  readonly renewed: { id: string; issuer: string; at: number }[] = [];
  #serial = 0;

  constructor(o: WorldOptions) {
    this.clock = new SimClock(o.start);
    for (const spec of o.cas) this.cas.set(spec.id, new SimCa(spec, this.clock));
    const issuers = new Map(
      o.cas.map((spec) => [
        spec.id,
        spec.ari ? { renewalInfo: async (pem: string) => this.window(spec, pem) } : {},
      ]),
    );
    const metrics: RenewalMetrics = {
      renewal: () => undefined,
      budgetShortfall: (issuer, count) => this.shortfalls.push({ issuer, count, at: this.clock.now() }),
    };
    this.scheduler = new RenewalScheduler({
      store: { loadCert: async (id) => this.load(id) },
      catalog: this.catalog,
      service: { ensure: (names, opts) => this.ensure(names, opts ?? {}) },
      issuers,
      rules: new RenewalRules({ issuerIds: o.cas.map((c) => c.id) }),
      orderLimits: o.orderLimits,
      log: o.log ?? silentLogger,
      metrics,
      clock: this.clock,
      ...o.scheduler,
    });
  }

  /**
   * Stops the scheduler. Its stop waits for the renewals still running, and only this clock moves
   * their fake CA's time: so the clock goes on (nothing new starts once stopped) until they have
   * finished. Awaiting the scheduler's stop alone hung whenever the run ended mid-order (jitter
   * decides): nothing left on the event loop, the test cancelled.
   */
  async stop(): Promise<void> {
    let stopped = false;
    const stopping = this.scheduler.stop().then(() => void (stopped = true));
    for (let step = 0; !stopped; step++) {
      if (step > 10_000) throw new Error('the scheduler did not stop within 10,000 simulated minutes: a renewal never finished');
      await this.clock.run(this.clock.now() + 60_000);
    }
    await stopping;
  }

  /** Stores a certificate issued at `issuedAt` (before the scheduler starts, or any time: it follows). */
  add(id: string, issuer: string, issuedAt: number): void {
    this.catalog.put(this.meta(id, issuer, issuedAt));
  }

  /** Certificates now stored whose expiry has passed (renewed too late or never). */
  expired(): number {
    const now = this.clock.now();
    let n = 0;
    for (const meta of this.catalog.all()) if (Date.parse(meta.notAfter) <= now) n++;
    return n;
  }

  private meta(id: string, issuer: string, issuedAt: number): CertMeta {
    const serial = String(++this.#serial);
    const life = this.cas.get(issuer)!.spec.lifetimeMs;
    return {
      id,
      names: [id],
      issuer,
      origin: 'api',
      notBefore: new Date(issuedAt).toISOString(),
      notAfter: new Date(issuedAt + life).toISOString(),
      serial,
      fingerprint: `${id}#${serial}`,
      updatedAt: new Date(issuedAt).toISOString(),
    };
  }

  private async load(id: string): Promise<StoredCert | undefined> {
    const meta = this.catalog.get(id);
    return meta ? ({ meta, certPem: meta.fingerprint, keyPem: '', chainPem: '' } as unknown as StoredCert) : undefined;
  }

  private window(spec: SimCaSpec, pem: string): RenewalWindow | undefined {
    const meta = this.catalog.get(pem.slice(0, pem.lastIndexOf('#')));
    const w = meta && meta.fingerprint === pem ? spec.ari?.(meta) : undefined;
    return w && { suggestedWindow: { start: new Date(w.start), end: new Date(w.end) }, retryAfterMs: spec.ariRetryAfterMs ?? 6 * 3_600_000 };
  }

  private async ensure(names: string[], opts: EnsureOptions): Promise<unknown> {
    const id = names[0]!;
    const ca = this.cas.get(opts.issuer!)!;
    const old = this.catalog.get(id);
    ca.running++;
    ca.peakRunning = Math.max(ca.peakRunning, ca.running);
    try {
      ca.order(old, opts.replaces !== undefined);
      await this.clock.sleep(ca.spec.issueMs);
      if (ca.spec.fail?.(id, this.clock.now())) {
        ca.failed++;
        throw Object.assign(new Error('simulated CA failure'), { code: 'CERTD_E_ACME' });
      }
      const now = this.clock.now();
      if (old && Date.parse(old.notAfter) <= now) this.missed++;
      ca.issued++;
      this.renewed.push({ id, issuer: ca.spec.id, at: now });
      this.catalog.put(this.meta(id, ca.spec.id, now));
      return undefined;
    } finally {
      ca.running--;
    }
  }
}

/** The most entries of sorted `times` inside any window of `perMs` (two pointers, O(n)). */
export function maxInWindow(times: readonly number[], perMs: number): number {
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < times.length; hi++) {
    while (times[hi]! - times[lo]! >= perMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}
