import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { maxInWindow, RenewalWorld } from './helpers/renewal-world.js';

const H = 3_600_000;
const DAY = 24 * H;
const T0 = Date.UTC(2026, 0, 1);

test('plans once from the catalog, then follows its changes: a look never reads all certificates', async () => {
  const w = new RenewalWorld({ cas: [{ id: 'ca', lifetimeMs: 30 * DAY, issueMs: 1_000 }], start: T0 });
  for (let i = 0; i < 10_000; i++) w.add(`c${i}.test`, 'ca', T0 - (i % 10) * DAY);
  let reads = 0;
  const all = w.catalog.all.bind(w.catalog);
  w.catalog.all = () => (reads++, all());
  w.scheduler.start();
  await w.clock.run(T0 + 45 * DAY);
  await w.stop();
  assert.equal(reads, 1, 'catalog.all() only at start');
  assert.equal(w.missed, 0);
  assert.equal(w.expired(), 0);
  assert.ok(w.cas.get('ca')!.issued >= 10_000, `${w.cas.get('ca')!.issued} renewals`);
  assert.ok(w.cas.get('ca')!.peakRunning <= 4, 'at most 4 renewals at once per issuer');
});

test('a certificate added or removed later is planned or forgotten at once', async () => {
  const w = new RenewalWorld({ cas: [{ id: 'ca', lifetimeMs: 6 * H, issueMs: 1_000 }], start: T0 });
  w.scheduler.start();
  await w.clock.run(T0 + H);
  w.add('late.test', 'ca', T0 + H);
  w.add('gone.test', 'ca', T0 + H);
  assert.deepEqual([...w.scheduler.dueTimes().keys()].sort(), ['gone.test', 'late.test']);
  w.catalog.delete('gone.test');
  assert.deepEqual([...w.scheduler.dueTimes().keys()], ['late.test']);
  await w.clock.run(T0 + 6 * H);
  await w.stop();
  assert.deepEqual(w.renewed.map((r) => r.id), ['late.test'], 'renewed once, between 3 h and 5 h in');
  assert.ok(w.renewed[0]!.at >= T0 + 3 * H && w.renewed[0]!.at <= T0 + 5 * H + 1_000);
});

test('the order budget holds in every window; a 429 pauses only its issuer; the local CA renews meanwhile', async () => {
  const w = new RenewalWorld({
    cas: [
      { id: 'acme', lifetimeMs: 10 * DAY, issueMs: 20_000, limit: { orders: 30, perMs: 3 * H } },
      { id: 'local', lifetimeMs: 2 * H, issueMs: 50 },
    ],
    orderLimits: new Map([['acme', { orders: 25, perMs: 3 * H, ariExempt: true }]]),
    start: T0,
  });
  // 400 ACME certificates issued at once: due within [5, 6.67] days, 25 per 3 h → 200 a day.
  for (let i = 0; i < 400; i++) w.add(`a${i}.test`, 'acme', T0);
  for (let i = 0; i < 20; i++) w.add(`l${i}.test`, 'local', T0);
  w.scheduler.start();
  await w.clock.run(T0 + 5.5 * DAY);
  // Another client of the account takes 20 orders: ours now meet the CA's 429.
  w.cas.get('acme')!.consume(20);
  await w.clock.run(T0 + 12 * DAY);
  await w.stop();
  const acme = w.cas.get('acme')!;
  assert.ok(maxInWindow(acme.counted, 3 * H) <= 25, 'our orders never exceeded our budget');
  assert.ok(acme.rateLimited >= 1, 'the 429 happened');
  assert.equal(w.missed, 0, 'no renewal after its expiry');
  assert.equal(w.expired(), 0);
  const local = w.renewed.filter((r) => r.issuer === 'local');
  // 2-hour certificates renew every ~1–1.3 h: the ACME lane's waiting never held them up.
  assert.ok(local.length >= 20 * 12 * 24 * 0.7, `${local.length} local renewals`);
  assert.ok(w.shortfalls.every((s) => s.issuer === 'acme'));
});

test('our budget alone: orders in any 3 h window never exceed it', async () => {
  const w = new RenewalWorld({
    cas: [{ id: 'acme', lifetimeMs: 10 * DAY, issueMs: 20_000, limit: { orders: 300, perMs: 3 * H } }],
    orderLimits: new Map([['acme', { orders: 25, perMs: 3 * H, ariExempt: true }]]),
    start: T0,
  });
  for (let i = 0; i < 400; i++) w.add(`a${i}.test`, 'acme', T0);
  w.scheduler.start();
  await w.clock.run(T0 + 10 * DAY);
  await w.stop();
  const acme = w.cas.get('acme')!;
  assert.equal(maxInWindow(acme.counted, 3 * H), 25);
  assert.equal(acme.rateLimited, 0);
  assert.equal(w.missed, 0);
  assert.equal(acme.issued, 400);
});

test('when the budget cannot cover what is due, the shortfall is reported and the soonest-expiring go first', async () => {
  const warnings: string[] = [];
  const start = T0 + 2.1 * DAY;
  const w = new RenewalWorld({
    cas: [{ id: 'acme', lifetimeMs: 3 * DAY, issueMs: 10_000 }],
    orderLimits: new Map([['acme', { orders: 10, perMs: 3 * H, ariExempt: true }]]),
    start,
    scheduler: { random: () => 0 },
    log: pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line).msg) }),
  });
  // 300 all due at start (at 2 days), expiring within 0.9 day, at 80 orders a day: most cannot make it.
  for (let i = 0; i < 300; i++) w.add(`a${String(i).padStart(3, '0')}.test`, 'acme', T0 - i * 60_000);
  w.scheduler.start();
  await w.clock.run(start + 0.8 * DAY);
  await w.stop();
  const worst = Math.max(...w.shortfalls.map((s) => s.count));
  assert.ok(worst > 200, `shortfall reported, at most ${worst}`);
  assert.ok(w.shortfalls.length > 1, 'the metric follows the count');
  const budgetWarnings = warnings.filter((m) => /cannot get an order before they expire/.test(m));
  assert.equal(budgetWarnings.length, 1, `one warning while it lasts: ${JSON.stringify(budgetWarnings)}`);
  const order = w.renewed.map((r) => Number(r.id.slice(1, 4)));
  assert.deepEqual(order.slice(0, 10).sort((a, b) => b - a), [299, 298, 297, 296, 295, 294, 293, 292, 291, 290], 'the oldest first');
  assert.ok(order.every((n, k) => k === 0 || n < order[k - 1]! + 4), 'in expiry order (4 at a time)');
});

test('ARI renewals are exempt from the budget when the CA exempts them', async () => {
  const w = new RenewalWorld({
    cas: [
      {
        id: 'acme',
        lifetimeMs: 6 * DAY,
        issueMs: 10_000,
        limit: { orders: 5, perMs: 3 * H },
        ari: (m) => ({ start: Date.parse(m.notBefore) + 3 * DAY, end: Date.parse(m.notBefore) + 4 * DAY }),
      },
    ],
    orderLimits: new Map([['acme', { orders: 5, perMs: 3 * H, ariExempt: true }]]),
    start: T0,
  });
  for (let i = 0; i < 200; i++) w.add(`a${i}.test`, 'acme', T0);
  w.scheduler.start();
  await w.clock.run(T0 + 5 * DAY);
  await w.stop();
  const acme = w.cas.get('acme')!;
  assert.equal(acme.exempt.length, 200, 'all renewed inside their ARI window, uncounted');
  assert.equal(acme.counted.length, 0);
  assert.ok([...w.scheduler.dueTimes().values()].every((p) => p.source === 'ari'));
});

test('a failed renewal is retried with backoff and then succeeds; the certificate never expires', async () => {
  let failUntil = T0 + 4 * H;
  const w = new RenewalWorld({
    cas: [{ id: 'ca', lifetimeMs: 6 * H, issueMs: 1_000, fail: (_id, now) => now < failUntil }],
    start: T0,
  });
  w.add('x.test', 'ca', T0);
  w.scheduler.start();
  await w.clock.run(T0 + 4 * H - 1);
  const plan = w.scheduler.dueTimes().get('x.test')!;
  assert.ok(plan.attempts >= 2, `${plan.attempts} attempts so far`);
  const failedSoFar = w.cas.get('ca')!.failed;
  assert.ok(failedSoFar <= 8, `${failedSoFar} failures in ≤ 1 h: backoff, not a loop`);
  failUntil = 0;
  await w.clock.run(T0 + 6 * H);
  await w.stop();
  assert.equal(w.cas.get('ca')!.issued, 1);
  assert.equal(w.missed, 0);
});

test('after a 429, one renewal probes while the others wait: no timer spins meanwhile', async () => {
  const w = new RenewalWorld({
    cas: [{ id: 'acme', lifetimeMs: 10 * DAY, issueMs: 60_000, limit: { orders: 5, perMs: H } }],
    orderLimits: new Map([['acme', { orders: 100, perMs: H, ariExempt: true }]]),
    start: T0,
    scheduler: { random: () => 0 },
  });
  for (let i = 0; i < 40; i++) w.add(`a${i}.test`, 'acme', T0 - 7 * DAY);
  w.scheduler.start();
  await w.clock.run(T0 + 10 * H, 2_000);
  await w.stop();
  const acme = w.cas.get('acme')!;
  assert.equal(acme.issued, 40);
  assert.ok(maxInWindow(acme.counted, H) <= 5);
  assert.ok(acme.rateLimited <= 3 * 8, `${acme.rateLimited} 429s: at most the 3 beside each probe`);
  assert.equal(w.missed, 0);
});

test('the world stops while an order is under way: the order finishes on the simulated clock', async () => {
  // 6 h certificates renew from 3 h in; each order takes 2 h, so one is running at 5 h.
  const w = new RenewalWorld({ cas: [{ id: 'ca', lifetimeMs: 6 * H, issueMs: 2 * H }], start: T0, scheduler: { random: () => 0 } });
  w.add('mid.test', 'ca', T0);
  w.scheduler.start();
  await w.clock.run(T0 + 5 * H);
  assert.equal(w.cas.get('ca')!.running, 1, 'an order under way when the run ends');
  await w.stop();
  assert.deepEqual(w.renewed.map((r) => r.id), ['mid.test']);
});
