import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ForgeGrants, GRANT_MAX, GRANT_MAX_DEMAND, GRANT_VALID_MS } from './grants.js';
import { parseGrantReport } from './grant-report.js';
import { TokenBucket } from './rate-limit.js';

test('a grant takes from the bucket, the unused part comes back at the next call', () => {
  const bucket = new TokenBucket(0, 10, 0);
  const g = new ForgeGrants(bucket);
  assert.deepEqual(g.grant('a', 0, 100, 0), { budget: 10, validMs: GRANT_VALID_MS });
  // Used 4 of 10: 6 go back, and are granted again.
  assert.equal(g.grant('a', 4, 100, 100).budget, 6);
  assert.equal(g.grant('a', 6, 100, 200).budget, 0);
});

test('the rest of a settled grant is carried into the next, so names the Lua spent it on while the call was out still fit', () => {
  const bucket = new TokenBucket(0, 3, 0);
  const g = new ForgeGrants(bucket);
  assert.equal(g.grant('a', 0, 100, 0).budget, 3);
  // One used before the call; the bucket is dry, yet the 2 left stay with the grantee.
  assert.equal(g.grant('a', 1, 100, 100).budget, 2);
  assert.equal(g.unsettled('a', 150), 2, 'the next report may bring the 2 names spent meanwhile');
  assert.equal(g.grant('a', 2, 100, 200).budget, 0);
});

test('the cap: outstanding grants count against the room, so two grantees never pass it together', () => {
  const g = new ForgeGrants(new TokenBucket(0, 1000, 0));
  assert.equal(g.grant('a', 0, 5, 0).budget, 5);
  assert.equal(g.grant('b', 0, 5, 0).budget, 0);
  // a settles its expired grant (unused) and takes the room again; b, asking after, gets none.
  assert.equal(g.grant('a', 0, 5, 2 * GRANT_VALID_MS).budget, 5);
  assert.equal(g.grant('b', 0, 5, 2 * GRANT_VALID_MS).budget, 0);
});

test('a grantee that used its grant gets up to twice as much next time, never more than GRANT_MAX_DEMAND', () => {
  const g = new ForgeGrants(new TokenBucket(0, 100_000, 0));
  assert.equal(g.grant('a', 0, 100_000, 0).budget, GRANT_MAX);
  assert.equal(g.grant('a', GRANT_MAX, 100_000, 10).budget, 2 * GRANT_MAX);
  assert.equal(g.grant('a', 2 * GRANT_MAX, 100_000, 20).budget, 4 * GRANT_MAX);
  for (let i = 0; i < 5; i++) g.grant('a', GRANT_MAX_DEMAND, 100_000, 30 + i);
  assert.equal(g.grant('a', GRANT_MAX_DEMAND, 100_000, 40).budget, GRANT_MAX_DEMAND);
  // Back to little use: back to the share.
  assert.equal(g.grant('a', 1, 100_000, 50).budget, GRANT_MAX);
});

test('refuse answers 0, and a first grant never exceeds GRANT_MAX', () => {
  const g = new ForgeGrants(new TokenBucket(0, 10_000, 0));
  assert.equal(g.grant('a', 0, 10_000, 0, true).budget, 0);
  assert.equal(g.grant('a', 0, 10_000, 0).budget, GRANT_MAX);
  assert.ok(g.grant('b', 0, 10_000, 0).budget <= GRANT_MAX / 2, 'shared with the other live grantee');
});

test('a grant report: malformed lines are dropped, never thrown on', () => {
  const r = parseGrantReport('grantee 0a1b\nused 3\nname 12 a.gen.test\nname x b.gen.test\nname 5 \nbogus\nused -1\n');
  assert.deepEqual(r, { grantee: '0a1b', used: 3, names: [{ name: 'a.gen.test', ageMs: 12 }] });
  assert.equal(parseGrantReport('grantee ZZZ\n').grantee, 'anonymous');
  assert.equal(parseGrantReport(`grantee 1\n${'name 1 a.b\n'.repeat(5000)}`).names.length, 1000);
});

test('unsettled: the units of the grant a call settles (0 for a grantee never granted)', () => {
  const g = new ForgeGrants(new TokenBucket(0, 10, 0));
  assert.equal(g.unsettled('never', 0), 0);
  g.grant('a', 0, 100, 0);
  assert.equal(g.unsettled('a', 100), 10);
});
