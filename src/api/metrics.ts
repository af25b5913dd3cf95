import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { VERSION } from '../core/version.js';
import type { Deployer } from '../haproxy/deploy/deployer.js';
import type { DeployMetrics, DeployOp } from '../haproxy/deploy/metrics.js';
import type { OnDemandMetrics } from '../ondemand/metrics.js';
import type { RenewalMetrics } from '../renew/metrics.js';
import type { RenewalScheduler } from '../renew/scheduler.js';
import type { RenewalTrigger, ServiceMetrics } from '../service/metrics.js';
import type { CertMeta } from '../store/store.js';
import type { ClusterStatus } from './status-view.js';

const DEPLOY_OPS: readonly DeployOp[] = ['add', 'update', 'remove'];
const INSTANCE_CERT_STATES = ['inSync', 'missing', 'stale'] as const;

/** What the scrape-time series are read from; the daemon attaches it once both exist. */
export interface MetricsState {
  deployer: Pick<Deployer, 'status' | 'readiness' | 'has'>;
  scheduler: Pick<RenewalScheduler, 'dueTimes'>;
  /** A shared store: its health, and the replicas (active-active). */
  cluster?: () => ClusterStatus;
  runsClusterWork?: () => boolean;
}

type ExpiryLabels = { cert: string; issuer: string; origin: string; serial: string };

/**
 * The daemon's Prometheus metrics, one registry per daemon (tests run several in one process):
 * the one implementation of each layer's metrics port.
 */
export class Metrics implements DeployMetrics, ServiceMetrics, OnDemandMetrics, RenewalMetrics {
  readonly registry = new Registry();
  private readonly deploys = new Counter({
    name: 'certd_deploy_total',
    help: 'Certificate operations pushed to an HAProxy instance',
    labelNames: ['instance', 'op'] as const,
    registers: [this.registry],
  });
  private readonly deployErrors = new Counter({
    name: 'certd_deploy_errors_total',
    help: 'Failed pushes or polls of an HAProxy instance',
    labelNames: ['instance'] as const,
    registers: [this.registry],
  });
  private readonly deploySeconds = new Histogram({
    name: 'certd_deploy_duration_seconds',
    help: 'Time to push one certificate operation to one instance',
    labelNames: ['instance', 'op'] as const,
    buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  private readonly up = new Gauge({
    name: 'certd_instance_up',
    help: '1 when the instance answered its last command',
    labelNames: ['instance'] as const,
    registers: [this.registry],
  });
  private readonly notAfter = new Gauge({
    name: 'certd_cert_not_after_timestamp_seconds',
    help: 'Expiry of each stored certificate (unix seconds); serial names the certificate now stored',
    labelNames: ['cert', 'issuer', 'origin', 'serial'] as const,
    registers: [this.registry],
  });
  /** The labels each certificate's expiry series carries now, so a removal or a renewal drops exactly it. */
  private readonly expiryLabels = new Map<string, ExpiryLabels>();
  private state?: MetricsState;
  private readonly issues = new Counter({
    name: 'certd_issue_total',
    help: 'Certificate issuances by issuer and result',
    labelNames: ['issuer', 'result'] as const,
    registers: [this.registry],
  });
  private readonly issueSeconds = new Histogram({
    name: 'certd_issue_duration_seconds',
    help: 'Time for an issuer to return a certificate',
    labelNames: ['issuer'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
    registers: [this.registry],
  });

  private readonly onDemandDecisions = new Counter({
    name: 'certd_ondemand_decisions_total',
    help: 'On-demand requests by outcome (known, issued, pending, refused, limited, failed) and reason',
    labelNames: ['status', 'reason'] as const,
    registers: [this.registry],
  });
  private readonly onDemandSeconds = new Histogram({
    name: 'certd_ondemand_issue_duration_seconds',
    help: 'From an unknown SNI to its certificate deployed',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
    registers: [this.registry],
  });

  private readonly renewals = new Counter({
    name: 'certd_renewal_total',
    help: 'Renewal attempts by result and trigger (scheduled, manual: renew, renew --all, POST /v1/renew)',
    labelNames: ['result', 'trigger'] as const,
    registers: [this.registry],
  });
  private readonly renewalFailing = new Gauge({
    name: 'certd_renewal_failing',
    help: '1 while the last renewal attempt of a certificate failed (alert on it)',
    labelNames: ['cert'] as const,
    registers: [this.registry],
  });
  private readonly budgetShortfalls = new Gauge({
    name: 'certd_renewal_budget_shortfall',
    help: "Due renewals of an issuer that its order budget (rateLimit) cannot start before they expire (alert when > 0)",
    labelNames: ['issuer'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'certd_build_info',
      help: 'Always 1; the running haproxy-certd version is in the label',
      labelNames: ['version'] as const,
      registers: [this.registry],
    }).set({ version: VERSION }, 1);
    // Read at each scrape from the deployer and the scheduler: what is gone has no series.
    const metrics = this;
    new Gauge({
      name: 'certd_instance_certs',
      help: 'Certificates per instance by state: in_sync (served as desired), missing (not served), stale (older version or other options)',
      labelNames: ['instance', 'state'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of metrics.state?.deployer.status() ?? []) {
          for (const key of INSTANCE_CERT_STATES) this.set({ instance: s.name, state: key === 'inSync' ? 'in_sync' : key }, s[key]);
        }
      },
    });
    new Gauge({
      name: 'certd_cert_ready',
      help: '1 when every instance serves the certificate as desired, else 0',
      labelNames: ['cert'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [cert, ready] of metrics.state?.deployer.readiness() ?? []) this.set({ cert }, ready ? 1 : 0);
      },
    });
    new Gauge({
      name: 'certd_cert_renewal_timestamp_seconds',
      help: 'When the scheduler will next try to renew the certificate (unix seconds); none for imported and source certificates',
      labelNames: ['cert'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        // Only what the deployer still has: a series lives as long as its certificate.
        for (const [cert, p] of metrics.state?.scheduler.dueTimes() ?? []) {
          if (metrics.state?.deployer.has(cert)) this.set({ cert }, Math.floor(Math.max(p.dueAt, p.nextTryAt) / 1000));
        }
      },
    });
  }

  /**
   * On a shared store: its health; on an active-active replica also who this process is, what it
   * owns and how it sees the others. Each replica describes itself (every replica is scraped), so
   * `sum by (instance) (certd_replica_owns)` is 1 for every HAProxy instance of a healthy cluster.
   */
  private clusterGauges(replicas: boolean): void {
    const metrics = this;
    const cluster = () => metrics.state?.cluster?.();
    const self = () => cluster()?.replicas?.find((r) => r.self);
    new Gauge({
      name: 'certd_store_up',
      help: '1 when the shared store (PostgreSQL) answered its last statement',
      registers: [this.registry],
      collect() {
        this.set(cluster()?.store?.ok ? 1 : 0);
      },
    });
    new Gauge({
      name: 'certd_store_round_trip_seconds',
      help: "The shared store's last successful statement, waiting for a pooled connection included",
      registers: [this.registry],
      collect() {
        this.set((cluster()?.store?.roundTripMs ?? 0) / 1000);
      },
    });
    if (!replicas) return;
    new Gauge({
      name: 'certd_replica_info',
      help: 'Always 1 on an active-active replica; its id, host and version are in the labels',
      labelNames: ['replica', 'host', 'version'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        const me = self();
        if (me) this.set({ replica: me.id, host: me.host, version: me.version }, 1);
      },
    });
    new Gauge({
      name: 'certd_replica_owns',
      help: '1 for each HAProxy instance this replica owns (writes to) now; summed over the replicas, 1 per instance',
      labelNames: ['instance'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const o of self()?.owns ?? []) this.set({ instance: o.instance }, 1);
      },
    });
    new Gauge({
      name: 'certd_replica_cluster_work',
      help: '1 while this replica runs the cluster-wide work (renewals, sources); summed over the replicas, 1',
      registers: [this.registry],
      collect() {
        this.set(metrics.state?.runsClusterWork?.() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'certd_replicas',
      help: "Replicas in the store's registry as this replica sees them, by state (up; gone: heartbeat older than its lease; stopped)",
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect() {
        const all = cluster()?.replicas ?? [];
        for (const state of ['up', 'gone', 'stopped'] as const) this.set({ state }, all.filter((r) => r.state === state).length);
      },
    });
  }

  /** Once per daemon, when the deployer and the scheduler exist. */
  attach(state: MetricsState): void {
    this.state = state;
    // Registered only on a shared store: an unlabelled gauge would read 0 ("down") on fs.
    if (state.cluster) this.clusterGauges(state.runsClusterWork !== undefined);
  }

  observe(instance: string, op: DeployOp, startedMs: number): void {
    this.deploys.inc({ instance, op });
    this.deploySeconds.observe({ instance, op }, (performance.now() - startedMs) / 1000);
  }

  error(instance: string): void {
    this.deployErrors.inc({ instance });
  }

  instanceUp(instance: string, isUp: boolean): void {
    this.up.set({ instance }, isUp ? 1 : 0);
  }

  instanceGone(instance: string): void {
    this.up.remove({ instance });
    this.deployErrors.remove({ instance });
    for (const op of DEPLOY_OPS) {
      this.deploys.remove({ instance, op });
      this.deploySeconds.remove({ instance, op });
    }
  }

  /** A certificate stored (issued, renewed, imported): its expiry series replaces the previous one. */
  certStored(meta: CertMeta): void {
    const labels = { cert: meta.id, issuer: meta.issuer, origin: meta.origin, serial: meta.serial };
    this.forgetExpiry(meta.id);
    this.expiryLabels.set(meta.id, labels);
    this.notAfter.set(labels, Math.floor(Date.parse(meta.notAfter) / 1000));
  }

  certRemoved(cert: string): void {
    this.forgetExpiry(cert);
    this.renewalFailing.remove({ cert });
  }

  renewal(cert: string, result: 'ok' | 'error', trigger: RenewalTrigger): void {
    this.renewals.inc({ result, trigger });
    this.renewalFailing.set({ cert }, result === 'ok' ? 0 : 1);
  }

  budgetShortfall(issuer: string, count: number): void {
    this.budgetShortfalls.set({ issuer }, count);
  }

  /** Rate-limit drops are the `limited` status (reasons rate-client, rate-global, cap). */
  onDemand(status: string, reason: string): void {
    this.onDemandDecisions.inc({ status, reason });
  }

  onDemandIssued(startedMs: number): void {
    this.onDemandSeconds.observe((performance.now() - startedMs) / 1000);
  }

  issued(issuer: string, result: 'ok' | 'error', startedMs: number): void {
    this.issues.inc({ issuer, result });
    if (result === 'ok') this.issueSeconds.observe({ issuer }, (performance.now() - startedMs) / 1000);
  }

  private forgetExpiry(cert: string): void {
    const labels = this.expiryLabels.get(cert);
    if (labels) this.notAfter.remove(labels);
    this.expiryLabels.delete(cert);
  }
}
