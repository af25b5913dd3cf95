import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dueFromLifetime, dueFromWindow, nextRetry, RenewalRules } from './renewal-rules.js';

const DAY = 86_400_000;

test('without ARI: two thirds of the lifetime, for 90-day and 6-day certificates', () => {
  assert.equal(dueFromLifetime({ notBefore: 0, notAfter: 90 * DAY }, 0), 60 * DAY);
  assert.equal(dueFromLifetime({ notBefore: 0, notAfter: 6 * DAY }, 0), 4 * DAY);
});

test('jitter only moves earlier, by at most 1% of the lifetime or an hour', () => {
  assert.equal(dueFromLifetime({ notBefore: 0, notAfter: 90 * DAY }, 1), 60 * DAY - 3_600_000);
  assert.equal(dueFromLifetime({ notBefore: 0, notAfter: 6 * DAY }, 1), 4 * DAY - 3_600_000);
  assert.ok(Math.abs(dueFromLifetime({ notBefore: 0, notAfter: 100_000 }, 1) - (100_000 * (2 / 3) - 1_000)) < 1e-6);
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
  assert.equal(rules.dueAt(meta, 1), 80 * DAY - 3_600_000);
  assert.equal(rules.isDue(meta, 80 * DAY - 1), false);
  assert.equal(rules.isDue(meta, 80 * DAY), true);
  assert.equal(new RenewalRules({ issuerIds: [] }).isDue(meta, 60 * DAY), true, 'two thirds without renewBefore');
  assert.deepEqual(new RenewalRules({ issuerIds: [] }).backoff, { baseMs: 60_000, capMs: 6 * 3_600_000 });
});
