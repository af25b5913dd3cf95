import type { Logger } from 'pino';
import type { OnDemandSpec } from '../config/schema.js';
import { errorKind } from '../core/errors.js';
import { tryValidateName } from '../core/names.js';
import type { Deployer } from '../haproxy/deploy/deployer.js';
import type { CertService, IssueResult } from '../service/cert-service.js';
import type { Store } from '../store/store.js';
import { catalogOf } from '../store/catalog.js';
import { noOnDemandMetrics, type OnDemandMetrics } from './metrics.js';
import { decidesLocally, OnDemandPolicy, type Verdict } from './policy.js';
import { ForgeGrants } from './grants.js';
import { parseGrantReport, type GrantReport } from './grant-report.js';
import { withTimeout } from '../core/async.js';
import type { OwnerForward } from './forward.js';

/** The ask URL said no (its message is the reason, e.g. `ask-refused`). */
class OnDemandRefusedError extends errorKind('CERTD_E_ONDEMAND_REFUSED', 'input') {}

/** `approved` (forge mode only): HAProxy forges this handshake's certificate; the real one is issued behind. */
export type OnDemandStatus = 'known' | 'issued' | 'pending' | 'approved' | 'refused' | 'limited' | 'failed';

export interface OnDemandOutcome {
  status: OnDemandStatus;
  /** One of a bounded set (it labels the decisions metric). */
  reason?: string;
  /** A failed issuance: what went wrong, for the log and the answer's body. */
  error?: string;
  ms?: number;
}

/** A failed issuance is not retried for this long (the handshake gets the default certificate). */
const FAILURE_BACKOFF_MS = 60_000;

/**
 * Forge mode: the real certificate is issued this long after the approval. Started at once, its
 * signature and push (`set ssl cert`, crt-list add) took CPU from the very handshake HAProxy was
 * forging: first handshake p50 9.2–10.3 ms started at once, 5.6–7.4 ms after 100 ms, 5.2–5.3 ms
 * after 250 ms (2 shared cores, load ~7, daemon in its own process). A handshake for the name
 * within that window is forged again, from HAProxy's cache.
 */
const ISSUE_BEHIND_DELAY_MS = 250;

/**
 * The daemon side of on-demand TLS: validate the SNI before anything else, then policy, then one
 * issuance per name however many handshakes race (joiners do not spend rate-limit tokens), then
 * answer within maxWait — a slower issuer finishes in the background and the next handshake gets
 * the certificate. Safe to call concurrently.
 */
export class OnDemand {
  private readonly policy: OnDemandPolicy;
  private readonly inflight = new Map<string, Promise<IssueResult>>();
  /** Forge mode: the ask URL's answer for names being decided or issued (joiners share it). */
  private readonly approvals = new Map<string, Promise<Verdict>>();
  /** Forge mode: issuances waiting for ISSUE_BEHIND_DELAY_MS (cleared at close). */
  private readonly behind = new Set<NodeJS.Timeout>();
  private issuedCount: number;
  /** Forge with local decisions: what each HAProxy process may approve on its own. */
  private readonly grants?: ForgeGrants;
  private closed = false;

  private constructor(
    private readonly spec: OnDemandSpec,
    private readonly service: CertService,
    private readonly deployer: Deployer,
    private readonly metrics: OnDemandMetrics,
    private readonly log: Logger,
    count: number,
    private readonly forward?: OwnerForward,
  ) {
    this.policy = new OnDemandPolicy(spec);
    this.issuedCount = count;
    if (decidesLocally(spec)) this.grants = new ForgeGrants(this.policy.global);
  }

  static async create(o: { spec: OnDemandSpec; service: CertService; deployer: Deployer; store: Store; metrics?: OnDemandMetrics; log: Logger; forward?: OwnerForward }) {
    const count = (await catalogOf(o.store)).count({ origin: 'ondemand' });
    return new OnDemand(o.spec, o.service, o.deployer, o.metrics ?? noOnDemandMetrics, o.log, count, o.forward);
  }

  /** `forwarded`: another replica handed this call on (see OwnerForward): answered here, never handed on again. */
  async handle(rawSni: string, client: string, forwarded = false): Promise<OnDemandOutcome> {
    const outcome = await (this.spec.forge ? this.decideForForge(rawSni, client) : this.decideAndIssue(rawSni, client, forwarded));
    this.metrics.onDemand(outcome.status, outcome.reason ?? outcome.status);
    return outcome;
  }

  /**
   * Closes the ask URL's kept-alive connections (daemon stop). Forge mode: issuances not started
   * yet are dropped; their names get the forge again until a later daemon issues them.
   */
  close(): void {
    this.closed = true;
    this.policy.close();
    this.forward?.close();
    for (const timer of this.behind) clearTimeout(timer);
    this.behind.clear();
  }

  private async decideAndIssue(rawSni: string, client: string, forwarded: boolean): Promise<OnDemandOutcome> {
    const name = tryValidateName(rawSni.trim());
    // Hostile SNIs stop here: never a path, a CA order or a runtime command.
    if (!name) return { status: 'refused', reason: 'invalid-name' };
    const settled = this.settled(name, client);
    if (settled) return settled;
    // Another replica owns the instances: it decides, issues and pushes (its policy, its limits).
    const owners = forwarded ? undefined : await this.forward?.ask(name, client, this.spec.maxWait);
    if (owners) return owners;
    const verdict = this.policy.screen(name, client, this.issuedCount + this.inflight.size);
    if (!verdict.allow) return this.refused(name, client, verdict);
    // The ask URL is asked while the store is looked up and locked (and a local CA signs, in
    // memory); nothing is stored, served or counted before it says yes. Handled here too, so a
    // refusal arriving before the service waits for it is not an unhandled rejection.
    const approval = this.policy.approve(name).then((v) => {
      if (!v.allow) throw new OnDemandRefusedError(v.reason);
    });
    approval.catch(() => undefined);
    const started = performance.now();
    const issuing = this.service.ensureForHandshake(name, { issuer: this.spec.issuer, approval });
    this.track(name, client, issuing, started);
    return this.await(name, client, issuing, started);
  }

  /**
   * Forge mode (onDemand.forge): the same checks, in the same order, but the answer is the
   * decision alone: `approved` sends the handshake to HAProxy's forge bind at once, and the real
   * certificate is issued behind (a later handshake gets it from known.map). Concurrent calls for
   * a name share one decision and spend one rate-limit token.
   */
  private async decideForForge(rawSni: string, client: string): Promise<OnDemandOutcome> {
    const name = tryValidateName(rawSni.trim());
    if (!name) return { status: 'refused', reason: 'invalid-name' };
    const joined = this.approvals.get(name);
    if (joined) return this.forgeAnswer(name, client, await joined);
    if (this.deployer.covers(name)) return { status: 'known' };
    // Names being decided count against the cap too: a burst of new names cannot pass it.
    const verdict = this.policy.screen(name, client, this.issuedCount + this.approvals.size);
    if (!verdict.allow) return this.refused(name, client, verdict);
    const approval = this.policy.approve(name);
    this.approvals.set(name, approval);
    const approved = await approval;
    if (!approved.allow) {
      this.approvals.delete(name);
      return this.refused(name, client, approved);
    }
    const timer = setTimeout(() => {
      this.behind.delete(timer);
      this.issueBehind(name, client);
    }, ISSUE_BEHIND_DELAY_MS);
    this.behind.add(timer);
    return { status: 'approved' };
  }

  /**
   * Forge with local decisions: HAProxy's grant call (`POST /ondemand/grant`, body parsed by
   * parseGrantReport). The names it approved since its last call go through the checks again
   * and are issued behind (250 ms after their approval); then its previous grant is settled and a
   * new one given, from the bucket and the cap's room left after those names. Answers a text body
   * the Lua reads: `budget K`, `valid MS`, and `refuse NAME` for reported names it will not issue.
   */
  grant(body: string): string {
    if (!this.grants) throw new Error('forge grants need onDemand.forge without ask and perClientPerMinute');
    const report: GrantReport = parseGrantReport(body);
    const refused: string[] = [];
    // Each new name spends a unit of the grant being settled; one beyond it was never granted.
    const units = this.grants.unsettled(report.grantee);
    let spent = 0;
    const spend = (): boolean => spent < units && ++spent > 0;
    for (const { name: raw, ageMs } of report.names) {
      const name = tryValidateName(raw);
      if (!name) {
        // Counted, so no forged name goes unaccounted; sent back only in the Lua's own charset.
        this.metrics.onDemand('refused', 'invalid-name');
        if (/^[a-z0-9.-]{1,253}$/.test(raw)) refused.push(raw);
      } else if (!this.admitReported(name, ageMs, spend)) refused.push(name);
    }
    const room = this.spec.maxCertificates - this.issuedCount - this.approvals.size;
    const g = this.grants.grant(report.grantee, Math.max(report.used, spent), room, Date.now(), this.closed);
    return [`budget ${g.budget}`, `valid ${g.validMs}`, ...refused.map((n) => `refuse ${n}`), ''].join('\n');
  }

  /** A name HAProxy forged on its grant: issued behind unless the checks, the cap or the grant's units say no. */
  private admitReported(name: string, ageMs: number, spend: () => boolean): boolean {
    if (this.approvals.has(name) || this.deployer.covers(name)) return true;
    const verdict = this.policy.recheck(name);
    if (!verdict.allow) {
      this.metrics.onDemand(verdict.status, verdict.reason);
      return false;
    }
    if (this.issuedCount + this.approvals.size >= this.spec.maxCertificates) {
      this.metrics.onDemand('limited', 'cap');
      return false;
    }
    if (!spend()) {
      this.metrics.onDemand('limited', 'rate-global');
      return false;
    }
    this.metrics.onDemand('approved', 'granted');
    this.approvals.set(name, Promise.resolve({ allow: true }));
    const timer = setTimeout(() => {
      this.behind.delete(timer);
      this.issueBehind(name, 'haproxy');
    }, Math.max(0, ISSUE_BEHIND_DELAY_MS - ageMs));
    this.behind.add(timer);
    return true;
  }

  /** Forge mode: the real certificate, issued and pushed while HAProxy serves the forged one. */
  private issueBehind(name: string, client: string): void {
    const issuing = this.service.ensureForHandshake(name, { issuer: this.spec.issuer });
    this.track(name, client, issuing, performance.now());
    void issuing.catch(() => undefined).finally(() => this.approvals.delete(name));
  }

  private forgeAnswer(name: string, client: string, v: Verdict): OnDemandOutcome {
    return v.allow ? { status: 'approved' } : this.refused(name, client, v);
  }

  /** Counts, logs and backs off an issuance as it ends; the name is in flight until then. */
  private track(name: string, client: string, issuing: Promise<IssueResult>, started: number): void {
    this.inflight.set(name, issuing);
    issuing.then(
      (r) => {
        if (r.issued) this.issuedCount++;
        this.metrics.onDemandIssued(started);
        this.log.info({ name, client, ms: Math.round(performance.now() - started) }, 'on-demand certificate issued');
      },
      (err: Error) => {
        // A refusal is remembered by the ask cache; a failure backs off here.
        if (err instanceof OnDemandRefusedError) return;
        this.policy.backOff(name, 'issue-failed', FAILURE_BACKOFF_MS);
        this.log.error({ name, err: err.message }, 'on-demand issuance failed');
      },
    ).finally(() => this.inflight.delete(name));
  }

  private refused(name: string, client: string, verdict: Verdict & { allow: false }): OnDemandOutcome {
    if (verdict.status === 'refused') this.log.debug({ name, client, reason: verdict.reason }, 'on-demand refused');
    else this.log.warn({ name, client, reason: verdict.reason }, 'on-demand limited');
    return { status: verdict.status, reason: verdict.reason };
  }

  /**
   * Joins an issuance in flight, or says the name is served already. In-flight comes first: the
   * deployer covers a name from the start of its push, before HAProxy serves it.
   */
  private settled(name: string, client: string): Promise<OnDemandOutcome> | undefined {
    const running = this.inflight.get(name);
    if (running) return this.await(name, client, running, performance.now());
    if (this.deployer.covers(name)) return Promise.resolve({ status: 'known' });
    return undefined;
  }

  /** Waits for an issuance up to maxWait; past it the handshake goes on with the default cert. */
  private async await(name: string, client: string, issuing: Promise<IssueResult>, started: number): Promise<OnDemandOutcome> {
    try {
      const r = await withTimeout(issuing, this.spec.maxWait, () => 'late' as const);
      if (r === 'late') return { status: 'pending', reason: 'issuing in the background' };
      return { status: 'issued', ms: Math.round(performance.now() - started) };
    } catch (err) {
      if (err instanceof OnDemandRefusedError) return this.refused(name, client, { allow: false, status: 'refused', reason: err.message });
      return { status: 'failed', reason: 'issuance', error: `${name}: ${(err as Error).message}` };
    }
  }
}
