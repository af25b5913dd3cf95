import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dueFromLifetime, dueFromWindow, nextRetry, RenewalRules } from './renewal-rules.js';

const DAY = 86_400_000;

test('without ARI: two thirds of the lifetime, for 90-day and 6-day certificates', () => {
  assert.equal(dueFromLifetime({ notBefore: 0, notAfter: 90 * DAY }, 0), 60 * DAY);
  assert.equal(dueFromLifetime({ notBefore: 0, notAfter: 6 * DAY }, 0), 4 * DAY);
});

test('jitter spreads over the sixth of the lifetime before the due point, only earlier', () => {
  assert.equal(dueFromLifetime({ notBefore: 0, notAfter: 90 * DAY }, 1), 45 * DAY);
  assert.equal(dueFromLifetime({ notBefore: 0, notAfter: 45 * DAY }, 0.5), 26.25 * DAY);
  assert.equal(dueFromLifetime({ notBefore: 0, notAfter: 6 * DAY }, 1), 3 * DAY);
  // renewBefore close to the lifetime: never earlier than half-way to the due point.
  assert.equal(dueFromLifetime({ notBefore: 0, notAfter: 60_000 }, 1, 55_000), 2_500);
});

test('jitter is uniform: 100,000 certificates issued at one instant renew evenly over the window', () => {
  const life = { notBefore: 0, notAfter: 45 * DAY };
  const perDay = new Map<number, number>();
  for (let i = 0; i < 100_000; i++) {
    const day = Math.floor(dueFromLifetime(life, (i + 0.5) / 100_000) / DAY);
    perDay.set(day, (perDay.get(day) ?? 0) + 1);
  }
  assert.deepEqual([...perDay.keys()].sort((a, b) => a - b), [22, 23, 24, 25, 26, 27, 28, 29]);
  // 7.5 days: ~13,333 a full day, none bunched.
  for (const day of [23, 24, 25, 26, 27, 28]) assert.ok(Math.abs(perDay.get(day)! - 13_333) <= 2, `day ${day}: ${perDay.get(day)}`);
});

test('renewBefore overrides the two-thirds rule', () => {
  assert.equal(dueFromLifetime({ notBefore: 0, notAfter: 90 * DAY }, 0, 30 * DAY), 60 * DAY);
  assert.equal(dueFromLifetime({ notBefore: 0, notAfter: 60_000 }, 0, 55_000), 5_000);
});

test('ARI: a point inside the window', () => {
  const w = { suggestedWindow: { start: new Date(1_000), end: new Date(2_000) }, retryAfterMs: 0 };
  assert.equal(dueFromWindow(w, 0), 1_000);
  assert.equal(dueFromWindow(w, 0.5), 1_500);
});

test('backoff doubles, caps, honours Retry-After, never past expiry', () => {
  const rules = { baseMs: 1_000, capMs: 8_000 };
  assert.deepEqual([1, 2, 3, 4, 5, 9].map((a) => nextRetry(0, a, rules, 1e9)), [1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
  assert.equal(nextRetry(0, 1, rules, 1e9, 60_000), 60_000);
  assert.equal(nextRetry(0, 5, rules, 5_000), 4_000);
  assert.equal(nextRetry(0, 5, rules, 500), 1_000, 'always at least baseMs ahead: never a tight loop');
});

test('RenewalRules: only certificates of configured issuers are renewable, never imports or sources', () => {
  const rules = new RenewalRules({ issuerIds: ['internal'] });
  assert.equal(rules.renewable({ id: 'a', issuer: 'internal', origin: 'config' }), true);
  assert.equal(rules.renewable({ id: 'a', issuer: 'internal', origin: 'ondemand' }), true);
  assert.equal(rules.renewable({ id: 'a', issuer: 'import', origin: 'import' }), false);
  assert.equal(rules.renewable({ id: 'a', issuer: 'internal', origin: 'source' }), false);
  assert.match(rules.whyNotRenewable({ id: 'a', issuer: 'import', origin: 'import' })!.message, /was imported .*import a new one instead/);
  assert.match(rules.whyNotRenewable({ id: 'a', issuer: 'gone', origin: 'api' })!.message, /"gone", which the config no longer has/);
});

test('RenewalRules: one due rule with renewBefore for the scheduler (jitter) and for reuse (none)', () => {
  const iso = (ms: number) => new Date(ms).toISOString();
  const meta = { notBefore: iso(0), notAfter: iso(90 * DAY) };
  const rules = new RenewalRules({ issuerIds: [], renewBeforeMs: 10 * DAY });
  assert.equal(rules.dueAt(meta, 0), 80 * DAY);
  assert.equal(rules.dueAt(meta, 1), 80 * DAY - 15 * DAY);
  assert.equal(rules.isDue(meta, 80 * DAY - 1), false);
  assert.equal(rules.isDue(meta, 80 * DAY), true);
  assert.equal(new RenewalRules({ issuerIds: [] }).isDue(meta, 60 * DAY), true, 'two thirds without renewBefore');
  assert.deepEqual(new RenewalRules({ issuerIds: [] }).backoff, { baseMs: 60_000, capMs: 6 * 3_600_000 });
});
