/**
 * What `GET /v1/status` answers and the status page is built from: the daemon's instances and its
 * certificates. Its own module so the server, the page and the CLI all import it one way.
 */
import type { Deployer } from '../haproxy/deploy/deployer.js';
import type { RenewalScheduler } from '../renew/scheduler.js';
import { EXPIRES_SOON_DAYS } from '../core/expiry.js';
import type { CertIndex, CertService, CertView } from '../service/cert-service.js';

/** What the status page is computed from: the instances, and the certificates as an index (not copied). */
export interface StatusView extends ClusterStatus {
  instances: ReturnType<Deployer['status']>;
  certs: CertIndex;
}

/**
 * One replica sharing the store, as the registry in the store says (active-active): `up` while
 * its heartbeat is younger than its lease, `gone` after (died, or cut off from the store),
 * `stopped` when it said so on its way out. A gone or stopped row stays listed for a day.
 */
export interface ReplicaView {
  id: string;
  host: string;
  pid: number;
  /** Its API (api.listen as bound). */
  api: string;
  version: string;
  state: 'up' | 'gone' | 'stopped';
  /** The replica answering this status. */
  self: boolean;
  upSince: string;
  heartbeatAt: string;
  heartbeatAgeMs: number;
  /** The instances it owns (writes to), with each lease's fencing token. */
  owns: { instance: string; token: string }[];
  /** The fencing token of the cluster-wide work's lease (renewals, sources), when it runs it. */
  clusterWork?: string;
}

/** The shared store's health as this replica sees it (absent for the fs store). */
export interface StoreHealthView {
  type: 'postgres';
  /** Whether its last statement was answered. */
  ok: boolean;
  downSince?: string;
  error?: string;
  /** The last successful statement's time (ms), and when. */
  roundTripMs?: number;
  checkedAt?: string;
  /** The last connection-level error, kept after a recovery. */
  lastError?: string;
  lastErrorAt?: string;
}

/** Replicas (active-active only) and the shared store's health: empty for a lone daemon on fs. */
export interface ClusterStatus {
  replicas?: ReplicaView[];
  store?: StoreHealthView;
}

/** The scheduler's plan per certificate (due time, failed attempts): absent before its first pass. */
export type RenewalPlans = ReturnType<RenewalScheduler['dueTimes']>;

/** Where a status view is read from; `renewals` is optional (a daemon without a scheduler yet). */
export interface StatusSources {
  service: Pick<CertService, 'index'>;
  deployer?: Pick<Deployer, 'status'>;
  renewals?: () => RenewalPlans | undefined;
  cluster?: () => ClusterStatus;
}

/** `GET /v1/status`: counts of all certificates and the soonest-expiring few, not every certificate. */
export interface StatusSummary extends ClusterStatus {
  instances: ReturnType<Deployer['status']>;
  counts: { stored: number; expired: number; expiringSoon: number };
  /** Expired or expiring within EXPIRES_SOON_DAYS, soonest first; at most STATUS_CERTS_SHOWN. */
  certs: Awaited<ReturnType<CertService['list']>>;
}

/** How many expiring certificates `GET /v1/status` names (`list --expiring` shows all). */
export const STATUS_CERTS_SHOWN = 100;

/** O(log N + STATUS_CERTS_SHOWN) from the catalog's counts and expiry order. */
export async function readStatusSummary(
  s: { service: Pick<CertService, 'page' | 'count'>; deployer?: Pick<Deployer, 'status'>; cluster?: () => ClusterStatus },
  now = Date.now(),
): Promise<StatusSummary> {
  const soon = new Date(now + EXPIRES_SOON_DAYS * 86_400_000).toISOString();
  const [stored, expired, expiringSoon, page] = await Promise.all([
    s.service.count(),
    s.service.count({ expiresBefore: new Date(now).toISOString() }),
    s.service.count({ expiresBefore: soon }),
    s.service.page({ order: 'expiry', limit: STATUS_CERTS_SHOWN, filter: { expiresBefore: soon } }),
  ]);
  return { instances: s.deployer?.status() ?? [], ...s.cluster?.(), counts: { stored, expired, expiringSoon }, certs: page.certs };
}

export async function readStatusView(s: StatusSources): Promise<StatusView> {
  return { instances: s.deployer?.status() ?? [], ...s.cluster?.(), certs: await s.service.index() };
}

/** An index over certificate views already made (tests, callers holding a list). */
export function indexOfViews(views: readonly CertView[]): CertIndex {
  const byId = new Map(views.map((v) => [v.id, v]));
  const sorted = [...views].sort((a, b) => Date.parse(a.notAfter) - Date.parse(b.notAfter) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return {
    size: views.length,
    byExpiry: () => sorted,
    issuers: () => [...new Set(views.map((v) => v.issuer))].sort(),
    deployedOn: (id) => byId.get(id)?.deployedOn ?? [],
    renewable: (m) => byId.get(m.id)?.renewable ?? false,
  };
}
