/**
 * The status page's content, computed on the server from a status view: the summary of everything,
 * the certificates matching a query (one page of them) and the expiry histogram. Pure; safe to call
 * concurrently. One pass over the catalog's expiry order per request (states depend on the clock,
 * the renewal plans and what each instance serves, so they are counted, not indexed): O(N) cheap
 * steps, rows built for one page only.
 */
import { UsageError } from '../core/errors.js';
import { daysLeft, EXPIRES_SOON_DAYS, expiryStateOfDays } from '../core/expiry.js';
import type { InstanceState } from '../haproxy/deploy/instance.js';
import type { CertMeta, CertOrigin } from '../store/store.js';
import type { RenewalPlans, ReplicaView, StatusView, StoreHealthView } from './status-view.js';

/**
 * One state per certificate, the first that applies: expired, failing (its last renewal attempt
 * failed), soon (under EXPIRES_SOON_DAYS left), pending (an instance that is up does not serve it
 * as desired yet), valid.
 */
export const CERT_STATES = ['expired', 'failing', 'soon', 'pending', 'valid'] as const;
export type CertState = (typeof CERT_STATES)[number];

const ORIGIN_SET: Record<CertOrigin, true> = { config: true, api: true, ondemand: true, import: true, source: true };
export const CERT_ORIGINS = Object.keys(ORIGIN_SET) as CertOrigin[];

export const PER_PAGE_DEFAULT = 50;
export const PER_PAGE_MAX = 500;
/** Auto-refresh period of the page (seconds): `?refresh=` between the bounds. */
export const REFRESH_DEFAULT_S = 15;
const REFRESH_MIN_S = 2;
const REFRESH_MAX_S = 3600;
const NEXT_RENEWALS_SHOWN = 5;
const FAILURES_SHOWN = 10;

export interface StatusQuery {
  /** Case-insensitive substring of any name (or the id). */
  q: string;
  state?: CertState;
  issuer?: string;
  origin?: CertOrigin;
  /** 1-based. */
  page: number;
  per: number;
  refresh: number;
}

/** Reads `?q=&state=&issuer=&origin=&page=&per=&refresh=`; an unknown state or origin, or a bad number, is a UsageError. */
export function parseStatusQuery(params: Record<string, string | undefined>): StatusQuery {
  const state = params.state || undefined;
  if (state !== undefined && !(CERT_STATES as readonly string[]).includes(state)) {
    throw new UsageError(`state "${state}" is not one of ${CERT_STATES.join(', ')}`);
  }
  const origin = params.origin || undefined;
  if (origin !== undefined && !(origin in ORIGIN_SET)) throw new UsageError(`origin "${origin}" is not one of ${CERT_ORIGINS.join(', ')}`);
  return {
    q: (params.q ?? '').trim(),
    state: state as CertState | undefined,
    issuer: params.issuer || undefined,
    origin: origin as CertOrigin | undefined,
    page: positiveInt(params.page, 'page', 1, 1, Number.MAX_SAFE_INTEGER),
    per: positiveInt(params.per, 'per', PER_PAGE_DEFAULT, 1, PER_PAGE_MAX),
    refresh: positiveInt(params.refresh, 'refresh', REFRESH_DEFAULT_S, REFRESH_MIN_S, REFRESH_MAX_S),
  };
}

function positiveInt(text: string | undefined, key: string, fallback: number, min: number, max: number): number {
  if (text === undefined || text === '') return fallback;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw new UsageError(`${key} must be a whole number from ${min} to ${max}`);
  return Number(text);
}

export interface CertRow {
  id: string;
  names: string[];
  issuer: string;
  origin: CertOrigin;
  notAfter: string;
  daysLeft: number;
  state: CertState;
  renewedByCertd: boolean;
  /** When the scheduler will next try (ISO); none for certificates certd does not renew. */
  nextRenewalAt?: string;
  failedAttempts: number;
  deployedOn: string[];
}

export interface InstanceRow {
  name: string;
  state: InstanceState;
  pid?: number;
  inSync: number;
  missing: number;
  stale: number;
  /** Only while the instance is not up: a recovered instance shows no old error. */
  lastError?: string;
  lastErrorAt?: string;
}

export interface Failure {
  kind: 'instance' | 'renewal' | 'store' | 'replica';
  name: string;
  message: string;
  at?: string;
}

export interface ExpiryBucket {
  label: string;
  /** Days left in [from, to); from undefined = expired, to undefined = open-ended. */
  from?: number;
  to?: number;
  count: number;
  state: 'expired' | 'soon' | 'ok';
}

export interface StatusPageModel {
  generatedAt: string;
  soonDays: number;
  summary: {
    instances: Record<InstanceState, number> & { total: number };
    certs: Record<CertState, number> & { total: number; notRenewed: number };
    nextRenewals: { id: string; at: string }[];
    failures: Failure[];
  };
  instances: InstanceRow[];
  /** Active-active: every replica in the store's registry (this one first). */
  replicas?: ReplicaView[];
  /** A shared store's health. */
  store?: StoreHealthView;
  query: StatusQuery;
  /** Certificates matching the query (all pages). */
  matching: number;
  pages: number;
  rows: CertRow[];
  /** Of the matching certificates. */
  timeline: ExpiryBucket[];
  /** For the filter's choices. */
  issuers: string[];
}

/**
 * Builds the page's content for one query in one pass over the certificates, soonest expiry first
 * (the catalog's order, so nothing is sorted here): every certificate is counted, only the rows
 * of the page shown are built. A page past the last is clamped with a second pass. `now` is
 * injected for tests.
 */
export function statusPageModel(view: StatusView, plans: RenewalPlans | undefined, query: StatusQuery, now = Date.now()): StatusPageModel {
  let scan = scanCerts(view, plans, query, query.page, now);
  const pages = Math.max(1, Math.ceil(scan.matching / query.per));
  if (query.page > pages) scan = scanCerts(view, plans, query, pages, now);
  const instances = { starting: 0, up: 0, down: 0, misconfigured: 0, remote: 0, total: view.instances.length };
  for (const i of view.instances) instances[i.state]++;
  const failures: Failure[] = [
    ...(view.store && !view.store.ok ? [{ kind: 'store' as const, name: 'store', message: `unreachable: ${view.store.error ?? ''}`, at: view.store.downSince }] : []),
    ...(view.replicas ?? [])
      .filter((r) => r.state === 'gone')
      .map((r): Failure => ({ kind: 'replica', name: r.id, message: `gone: no heartbeat for ${Math.round(r.heartbeatAgeMs / 1000)} s`, at: r.heartbeatAt })),
    ...view.instances
      .filter((i) => i.state !== 'up' && i.lastError)
      .map((i): Failure => ({ kind: 'instance', name: i.name, message: `${i.state}: ${i.lastError}`, at: i.lastErrorAt })),
    ...scan.failures,
  ].slice(0, FAILURES_SHOWN);
  return {
    generatedAt: new Date(now).toISOString(),
    soonDays: EXPIRES_SOON_DAYS,
    summary: { instances, certs: scan.counts, nextRenewals: scan.nextRenewals, failures },
    instances: view.instances.map((i) => ({
      name: i.name,
      state: i.state,
      pid: i.pid,
      inSync: i.inSync,
      missing: i.missing,
      stale: i.stale,
      ...(i.state !== 'up' && i.lastError ? { lastError: i.lastError, lastErrorAt: i.lastErrorAt } : {}),
    })),
    ...(view.replicas ? { replicas: view.replicas } : {}),
    ...(view.store ? { store: view.store } : {}),
    query: { ...query, page: Math.min(query.page, pages) },
    matching: scan.matching,
    pages,
    rows: scan.rows,
    timeline: scan.timeline,
    issuers: view.certs.issuers(),
  };
}

interface Scan {
  counts: StatusPageModel['summary']['certs'];
  nextRenewals: { id: string; at: string }[];
  failures: Failure[];
  matching: number;
  rows: CertRow[];
  timeline: ExpiryBucket[];
}

function scanCerts(view: StatusView, plans: RenewalPlans | undefined, query: StatusQuery, page: number, now: number): Scan {
  const upInstances = view.instances.filter((i) => i.state === 'up').map((i) => i.name);
  const counts = { expired: 0, failing: 0, soon: 0, pending: 0, valid: 0, total: 0, notRenewed: 0 };
  const next: { id: string; at: number }[] = [];
  const failures: Failure[] = [];
  const rows: CertRow[] = [];
  const timeline = emptyTimeline();
  const text = query.q.toLowerCase();
  const first = (page - 1) * query.per;
  let matching = 0;
  for (const c of view.certs.byExpiry()) {
    const renewable = view.certs.renewable(c);
    const plan = renewable ? plans?.get(c.id) : undefined;
    const failedAttempts = plan?.attempts ?? 0;
    const days = daysLeft(c.notAfter, now);
    const expiry = expiryStateOfDays(days);
    // No closure per certificate: this loop runs N times per page view.
    let deployedOn: string[] | undefined;
    let state: CertState;
    if (expiry === 'expired') state = 'expired';
    else if (failedAttempts > 0) state = 'failing';
    else if (expiry === 'soon') state = 'soon';
    else if (upInstances.length === 0) state = 'valid';
    else {
      deployedOn = view.certs.deployedOn(c.id);
      state = servesAll(deployedOn, upInstances) ? 'valid' : 'pending';
    }
    counts[state]++;
    counts.total++;
    if (!renewable) counts.notRenewed++;
    const nextAt = plan ? Math.max(plan.dueAt, plan.nextTryAt) : undefined;
    if (nextAt !== undefined) keepSoonest(next, { id: c.id, at: nextAt }, NEXT_RENEWALS_SHOWN);
    if (failedAttempts > 0 && failures.length < FAILURES_SHOWN) {
      failures.push({ kind: 'renewal', name: c.id, message: `renewal failed ${failedAttempts}×; next try ${nextAt === undefined ? 'unknown' : new Date(nextAt).toISOString()}` });
    }
    if (!matches(c, state, query, text)) continue;
    countInTimeline(timeline, days);
    if (matching >= first && matching < first + query.per) {
      rows.push({
        id: c.id,
        names: c.names,
        issuer: c.issuer,
        origin: c.origin,
        notAfter: c.notAfter,
        daysLeft: days,
        state,
        renewedByCertd: renewable,
        nextRenewalAt: nextAt === undefined ? undefined : new Date(nextAt).toISOString(),
        failedAttempts,
        deployedOn: deployedOn ?? view.certs.deployedOn(c.id),
      });
    }
    matching++;
  }
  return { counts, nextRenewals: next.map((r) => ({ id: r.id, at: new Date(r.at).toISOString() })), failures, matching, rows, timeline };
}

function servesAll(deployedOn: readonly string[], instances: readonly string[]): boolean {
  for (const name of instances) if (!deployedOn.includes(name)) return false;
  return true;
}

/** Keeps `list` the `max` soonest, sorted (a few entries: an insertion, not a sort of N). */
function keepSoonest(list: { id: string; at: number }[], item: { id: string; at: number }, max: number): void {
  if (list.length === max && item.at >= list[max - 1]!.at) return;
  let i = list.length;
  while (i > 0 && list[i - 1]!.at > item.at) i--;
  list.splice(i, 0, item);
  if (list.length > max) list.pop();
}

function matches(c: CertMeta, state: CertState, q: StatusQuery, text: string): boolean {
  if (q.state && state !== q.state) return false;
  if (q.issuer && c.issuer !== q.issuer) return false;
  if (q.origin && c.origin !== q.origin) return false;
  return text === '' || c.id.toLowerCase().includes(text) || c.names.some((n) => n.toLowerCase().includes(text));
}

/** Bucket edges in days left; EXPIRES_SOON_DAYS is an edge, so "soon" bars are exactly the soon ones. */
function bucketEdges(): number[] {
  return [...new Set([0, Math.ceil(EXPIRES_SOON_DAYS / 2), EXPIRES_SOON_DAYS, 30, 60, 90])].sort((a, b) => a - b);
}

function emptyTimeline(): ExpiryBucket[] {
  const edges = bucketEdges();
  return [
    { label: 'expired', to: 0, count: 0, state: 'expired' },
    ...edges.map((from, i): ExpiryBucket => {
      const to = edges[i + 1];
      return { label: to === undefined ? `${from}+ d` : `${from}–${to - 1} d`, from, to, count: 0, state: from < EXPIRES_SOON_DAYS ? 'soon' : 'ok' };
    }),
  ];
}

function countInTimeline(buckets: ExpiryBucket[], days: number): void {
  const b = days < 0 ? buckets[0]! : buckets.findLast((x) => x.from !== undefined && days >= x.from)!;
  b.count++;
}
