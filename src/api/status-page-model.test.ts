import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../core/errors.js';
import { EXPIRES_SOON_DAYS } from '../core/expiry.js';
import type { InstanceStatus } from '../haproxy/deploy/instance.js';
import type { CertView } from '../service/cert-service.js';
import { parseStatusQuery, statusPageModel } from './status-page-model.js';
import { renderStatusPage } from './status-page.js';
import { indexOfViews, type RenewalPlans, type ReplicaView } from './status-view.js';

const NOW = Date.parse('2026-06-01T00:00:00Z');
const DAY = 86_400_000;

function cert(id: string, daysLeft: number, extra: Partial<CertView> = {}): CertView {
  return {
    id,
    names: [id],
    issuer: 'internal',
    origin: 'api',
    notBefore: new Date(NOW - DAY).toISOString(),
    notAfter: new Date(NOW + daysLeft * DAY + 3_600_000).toISOString(),
    serial: '01',
    fingerprint: 'ff',
    updatedAt: new Date(NOW).toISOString(),
    deployedOn: ['h1'],
    // As the renewal rules say: imports and sources are someone else's to renew.
    renewable: extra.origin !== 'import' && extra.origin !== 'source',
    ...extra,
  };
}

function instance(name: string, state: InstanceStatus['state'], lastError?: string): InstanceStatus {
  return { name, state, inSync: 0, missing: 0, stale: 0, pending: 0, ...(lastError ? { lastError, lastErrorAt: new Date(NOW).toISOString() } : {}) };
}

const query = (params: Record<string, string> = {}) => parseStatusQuery(params);

test('one state per certificate, the first that applies: expired, failing, soon, pending, valid', () => {
  const plans: RenewalPlans = new Map([
    ['failing.test', { dueAt: NOW - DAY, source: 'lifetime' as const, attempts: 2, nextTryAt: NOW + 60_000 }],
    ['valid.test', { dueAt: NOW + 20 * DAY, source: 'lifetime' as const, attempts: 0, nextTryAt: 0 }],
  ]);
  const view = {
    instances: [instance('h1', 'up'), instance('h2', 'down', 'connect ECONNREFUSED')],
    certs: indexOfViews([
      cert('expired.test', -1),
      cert('failing.test', 30),
      cert('soon.test', EXPIRES_SOON_DAYS - 1),
      cert('edge.test', EXPIRES_SOON_DAYS),
      cert('pending.test', 40, { deployedOn: [] }),
      cert('valid.test', 40),
      cert('imported.test', 40, { origin: 'import', issuer: 'import' }),
    ]),
  };
  const m = statusPageModel(view, plans, query({ per: '500' }), NOW);
  const states = Object.fromEntries(m.rows.map((r) => [r.id, r.state]));
  assert.deepEqual(states, {
    'expired.test': 'expired',
    'failing.test': 'failing',
    'soon.test': 'soon',
    'edge.test': 'valid',
    'pending.test': 'pending',
    'valid.test': 'valid',
    'imported.test': 'valid',
  });
  assert.deepEqual(m.summary.certs, { expired: 1, failing: 1, soon: 1, pending: 1, valid: 3, total: 7, notRenewed: 1 });
  assert.deepEqual(m.summary.instances, { starting: 0, up: 1, down: 1, misconfigured: 0, remote: 0, total: 2 });
  assert.deepEqual(m.summary.nextRenewals.map((r) => r.id), ['failing.test', 'valid.test']);
  assert.deepEqual(
    m.summary.failures.map((f) => [f.kind, f.name]),
    [
      ['instance', 'h2'],
      ['renewal', 'failing.test'],
    ],
  );
  const imported = m.rows.find((r) => r.id === 'imported.test')!;
  assert.equal(imported.renewedByCertd, false);
  assert.equal(imported.nextRenewalAt, undefined);
  // Soon is an edge of the chart's buckets: the soon bars hold exactly the soon certificates.
  const soonBars = m.timeline.filter((b) => b.state === 'soon').reduce((n, b) => n + b.count, 0);
  assert.equal(soonBars, 1);
});

test('a recovered instance shows no old error; down and misconfigured show theirs', () => {
  const m = statusPageModel({ instances: [instance('h1', 'up', 'old failure'), instance('h2', 'misconfigured', 'no bind loads the crt-list')], certs: indexOfViews([]) }, undefined, query(), NOW);
  assert.equal(m.instances[0]!.lastError, undefined);
  assert.equal(m.instances[1]!.lastError, 'no bind loads the crt-list');
  assert.deepEqual(m.summary.failures.map((f) => f.name), ['h2']);
});

test('search, filters and paging: matching count over all pages, the page clamped to the last', () => {
  const certs = Array.from({ length: 25 }, (_, i) => cert(`n${String(i).padStart(2, '0')}.example.test`, 20 + i, i % 5 === 0 ? { origin: 'source', issuer: 'src' } : {}));
  const view = { instances: [instance('h1', 'up')], certs: indexOfViews(certs) };
  assert.equal(statusPageModel(view, undefined, query({ q: 'N1' }), NOW).matching, 10);
  assert.equal(statusPageModel(view, undefined, query({ origin: 'source' }), NOW).matching, 5);
  assert.equal(statusPageModel(view, undefined, query({ issuer: 'src', q: 'n2' }), NOW).matching, 1);
  const last = statusPageModel(view, undefined, query({ per: '10', page: '7' }), NOW);
  assert.deepEqual([last.pages, last.query.page, last.rows.length, last.rows[0]!.id], [3, 3, 5, 'n20.example.test']);
  assert.deepEqual(last.issuers, ['internal', 'src']);
});

test('bad query values are usage errors that say what is allowed', () => {
  assert.throws(() => query({ state: 'broken' }), (e: unknown) => e instanceof UsageError && /not one of expired, failing, soon, pending, valid/.test(e.message));
  assert.throws(() => query({ origin: 'x' }), UsageError);
  assert.throws(() => query({ per: '501' }), /per must be a whole number from 1 to 500/);
  assert.throws(() => query({ page: '0' }), UsageError);
  assert.throws(() => query({ refresh: '1' }), /refresh must be a whole number from 2 to 3600/);
  assert.deepEqual(query({}), { q: '', state: undefined, issuer: undefined, origin: undefined, page: 1, per: 50, refresh: 15 });
});

test('replicas and the store: shown as given; a gone replica and an unreachable store are failures, and the page names them', () => {
  const replica = (id: string, state: ReplicaView['state'], owns: string[], extra: Partial<ReplicaView> = {}): ReplicaView => ({
    id,
    host: 'host-1',
    pid: 100,
    api: 'http://127.0.0.1:9180',
    version: '1.0.0',
    state,
    self: false,
    upSince: new Date(NOW - DAY).toISOString(),
    heartbeatAt: new Date(NOW - 9_000).toISOString(),
    heartbeatAgeMs: 9_000,
    owns: owns.map((instance, i) => ({ instance, token: String(10 + i) })),
    ...extra,
  });
  const replicas = [replica('a', 'up', ['h1'], { self: true, clusterWork: '7', heartbeatAgeMs: 300 }), replica('b<x>', 'gone', ['h2'])];
  const store = { type: 'postgres' as const, ok: false, downSince: new Date(NOW - 5_000).toISOString(), error: 'PostgreSQL at db:5432/certd is not answering' };
  const m = statusPageModel({ instances: [instance('h1', 'up')], certs: indexOfViews([]), replicas, store }, undefined, query(), NOW);
  assert.deepEqual(m.replicas, replicas);
  assert.deepEqual(m.summary.failures.map((f) => [f.kind, f.name]), [['store', 'store'], ['replica', 'b<x>']]);
  const html = renderStatusPage(m, 'nonce');
  assert.match(html, /<table id="replicas">/);
  assert.match(html, /data-replica="a".*\(this one\).*h1 \(token 10\).*yes <span class="muted">\(token 7\)/);
  assert.match(html, /data-replica="b&#60;x&#62;"/, 'ids are escaped');
  assert.match(html, /<p id="store" data-ok="false">.*UNREACHABLE/);
  assert.match(html, /<title>haproxy-certd status \(2 problems\)<\/title>/);
  const lone = renderStatusPage(statusPageModel({ instances: [], certs: indexOfViews([]) }, undefined, query(), NOW), 'n');
  assert.doesNotMatch(lone, /id="replicas"|id="store"/, 'a lone daemon on fs shows neither');
});
