/**
 * The status page's content, computed on the server from a status view: the summary of everything,
 * the certificates matching a query (one page of them) and the expiry histogram. Pure; safe to call
 * concurrently. Filtering and paging run here over the whole list (O(N) per request, ~N = 100,000
 * fits): once the store keeps indexes, the query should move down to it.
 */
import { UsageError } from '../core/errors.js';
import { daysLeft, EXPIRES_SOON_DAYS, expiryState } from '../core/expiry.js';
import type { InstanceState } from '../haproxy/deploy/instance.js';
import type { CertOrigin } from '../store/store.js';
import type { RenewalPlans, StatusView } from './status-view.js';

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
  kind: 'instance' | 'renewal';
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

/** Builds the page's content for one query; `now` is injected for tests. */
export function statusPageModel(view: StatusView, plans: RenewalPlans | undefined, query: StatusQuery, now = Date.now()): StatusPageModel {
  const upInstances = view.instances.filter((i) => i.state === 'up').map((i) => i.name);
  const all = view.certs.map((c): CertRow => {
    const plan = c.renewable ? plans?.get(c.id) : undefined;
    const failedAttempts = plan?.attempts ?? 0;
    const pending = !upInstances.every((name) => c.deployedOn.includes(name));
    const expiry = expiryState(c.notAfter, now);
    const state: CertState = expiry === 'expired' ? 'expired' : failedAttempts > 0 ? 'failing' : expiry === 'soon' ? 'soon' : pending ? 'pending' : 'valid';
    return {
      id: c.id,
      names: c.names,
      issuer: c.issuer,
      origin: c.origin,
      notAfter: c.notAfter,
      daysLeft: daysLeft(c.notAfter, now),
      state,
      renewedByCertd: c.renewable,
      nextRenewalAt: plan ? new Date(Math.max(plan.dueAt, plan.nextTryAt)).toISOString() : undefined,
      failedAttempts,
      deployedOn: c.deployedOn,
    };
  });
  const text = query.q.toLowerCase();
  const matching = all.filter((r) => matches(r, query, text)).sort((a, b) => a.notAfter.localeCompare(b.notAfter) || a.id.localeCompare(b.id));
  const pages = Math.max(1, Math.ceil(matching.length / query.per));
  const page = Math.min(query.page, pages);
  return {
    generatedAt: new Date(now).toISOString(),
    soonDays: EXPIRES_SOON_DAYS,
    summary: summarize(view, all),
    instances: view.instances.map((i) => ({
      name: i.name,
      state: i.state,
      pid: i.pid,
      inSync: i.inSync,
      missing: i.missing,
      stale: i.stale,
      ...(i.state !== 'up' && i.lastError ? { lastError: i.lastError, lastErrorAt: i.lastErrorAt } : {}),
    })),
    query: { ...query, page },
    matching: matching.length,
    pages,
    rows: matching.slice((page - 1) * query.per, page * query.per),
    timeline: timeline(matching),
    issuers: [...new Set(view.certs.map((c) => c.issuer))].sort(),
  };
}

function matches(r: CertRow, q: StatusQuery, text: string): boolean {
  if (q.state && r.state !== q.state) return false;
  if (q.issuer && r.issuer !== q.issuer) return false;
  if (q.origin && r.origin !== q.origin) return false;
  return text === '' || r.id.toLowerCase().includes(text) || r.names.some((n) => n.toLowerCase().includes(text));
}

function summarize(view: StatusView, rows: CertRow[]): StatusPageModel['summary'] {
  const instances = { starting: 0, up: 0, down: 0, misconfigured: 0, remote: 0, total: view.instances.length };
  for (const i of view.instances) instances[i.state]++;
  const certs = { expired: 0, failing: 0, soon: 0, pending: 0, valid: 0, total: rows.length, notRenewed: 0 };
  for (const r of rows) {
    certs[r.state]++;
    if (!r.renewedByCertd) certs.notRenewed++;
  }
  const nextRenewals = rows
    .filter((r): r is CertRow & { nextRenewalAt: string } => r.nextRenewalAt !== undefined)
    .sort((a, b) => a.nextRenewalAt.localeCompare(b.nextRenewalAt))
    .slice(0, NEXT_RENEWALS_SHOWN)
    .map((r) => ({ id: r.id, at: r.nextRenewalAt }));
  const failures: Failure[] = [
    ...view.instances
      .filter((i) => i.state !== 'up' && i.lastError)
      .map((i): Failure => ({ kind: 'instance', name: i.name, message: `${i.state}: ${i.lastError}`, at: i.lastErrorAt })),
    ...rows
      .filter((r) => r.failedAttempts > 0)
      .map((r): Failure => ({ kind: 'renewal', name: r.id, message: `renewal failed ${r.failedAttempts}×; next try ${r.nextRenewalAt ?? 'unknown'}` })),
  ].slice(0, FAILURES_SHOWN);
  return { instances, certs, nextRenewals, failures };
}

/** Bucket edges in days left; EXPIRES_SOON_DAYS is an edge, so "soon" bars are exactly the soon ones. */
function bucketEdges(): number[] {
  return [...new Set([0, Math.ceil(EXPIRES_SOON_DAYS / 2), EXPIRES_SOON_DAYS, 30, 60, 90])].sort((a, b) => a - b);
}

function timeline(rows: CertRow[]): ExpiryBucket[] {
  const edges = bucketEdges();
  const buckets: ExpiryBucket[] = [
    { label: 'expired', to: 0, count: 0, state: 'expired' },
    ...edges.map((from, i): ExpiryBucket => {
      const to = edges[i + 1];
      return { label: to === undefined ? `${from}+ d` : `${from}–${to - 1} d`, from, to, count: 0, state: from < EXPIRES_SOON_DAYS ? 'soon' : 'ok' };
    }),
  ];
  for (const r of rows) {
    const b = r.daysLeft < 0 ? buckets[0]! : buckets.findLast((x) => x.from !== undefined && r.daysLeft >= x.from)!;
    b.count++;
  }
  return buckets;
}
