/**
 * What `GET /v1/status` answers and the status page is built from: the daemon's instances and its
 * certificates. Its own module so the server, the page and the CLI all import it one way.
 */
import type { Deployer } from '../haproxy/deploy/deployer.js';
import type { RenewalScheduler } from '../renew/scheduler.js';
import type { CertService } from '../service/cert-service.js';

export interface StatusView {
  instances: ReturnType<Deployer['status']>;
  certs: Awaited<ReturnType<CertService['list']>>;
}

/** The scheduler's plan per certificate (due time, failed attempts): absent before its first pass. */
export type RenewalPlans = ReturnType<RenewalScheduler['dueTimes']>;

/** Where a status view is read from; `renewals` is optional (a daemon without a scheduler yet). */
export interface StatusSources {
  service: Pick<CertService, 'list'>;
  deployer?: Pick<Deployer, 'status'>;
  renewals?: () => RenewalPlans | undefined;
}

export async function readStatusView(s: StatusSources): Promise<StatusView> {
  return { instances: s.deployer?.status() ?? [], certs: await s.service.list() };
}
