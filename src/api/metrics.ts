import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { VERSION } from '../core/version.js';
import type { DeployMetrics, DeployOp } from '../haproxy/deploy/metrics.js';

/** The daemon's Prometheus metrics, one registry per daemon (tests run several in one process). */
export class Metrics implements DeployMetrics {
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
    help: 'Expiry of each managed certificate (unix seconds)',
    labelNames: ['cert', 'issuer'] as const,
    registers: [this.registry],
  });
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
    help: 'Renewal attempts by result',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  private readonly renewalFailing = new Gauge({
    name: 'certd_renewal_failing',
    help: '1 while the last renewal attempt of a certificate failed (alert on it)',
    labelNames: ['cert'] as const,
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

  certExpiry(cert: string, issuer: string, notAfter: string | undefined): void {
    if (notAfter === undefined) this.notAfter.remove({ cert, issuer });
    else this.notAfter.set({ cert, issuer }, Math.floor(Date.parse(notAfter) / 1000));
  }

  renewal(cert: string, result: 'ok' | 'error'): void {
    this.renewals.inc({ result });
    this.renewalFailing.set({ cert }, result === 'ok' ? 0 : 1);
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
}
