import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseGrantReport } from '../src/ondemand/grant-report.js';
import { ForgeGrants } from '../src/ondemand/grants.js';
import { TokenBucket } from '../src/ondemand/rate-limit.js';

describe('grant reports (what HAProxy’s Lua sends with a grant call)', () => {
  test('grantee, used and names with their ages; malformed lines are dropped, never thrown on', () => {
    const r = parseGrantReport(['grantee 00ff', 'used 3', 'name 12 a.flood.test', 'name x b.flood.test', 'garbage', 'name 5 c d', ''].join('\n'));
    assert.deepEqual(r, { grantee: '00ff', used: 3, names: [{ name: 'a.flood.test', ageMs: 12 }] });
  });

  test('a negative age (HAProxy threads’ clocks apart) is an age of 0: the name was spent, so it is kept', () => {
    const r = parseGrantReport('grantee 1\nused 1\nname -1 a.flood.test\n');
    assert.deepEqual(r.names, [{ name: 'a.flood.test', ageMs: 0 }]);
  });

  test('at most 1,000 names per report', () => {
    const body = ['grantee 1', ...Array.from({ length: 1_200 }, (_, i) => `name 0 n${i}.test`)].join('\n');
    assert.equal(parseGrantReport(body).names.length, 1_000);
  });
});

describe('forge grants: the units a call settles cover every name the Lua spent', () => {
  const t0 = 1_000_000;

  test('names spent while a call is out are covered by the next grant, even with the bucket empty', () => {
    const grants = new ForgeGrants(new TokenBucket(1, 3, t0));
    const first = grants.grant('g', 0, 1000, t0);
    assert.equal(first.budget, 3);
    // The Lua spends 1, calls (used 1); while that call is out it spends the other 2.
    const second = grants.grant('g', 1, 1000, t0 + 10);
    assert.ok(second.budget >= 2, `the 2 spent during the call are carried (budget ${second.budget})`);
    // The next call reports those 2: the grant it settles has the units for them.
    assert.ok(grants.unsettled('g', t0 + 20) >= 2);
    const third = grants.grant('g', 2, 1000, t0 + 20);
    assert.equal(third.budget, 0, 'nothing beyond the burst');
  });

  test('over many calls, units granted never pass the burst plus the refill', () => {
    const bucket = new TokenBucket(60, 5, t0);
    const grants = new ForgeGrants(bucket);
    let budget = 0;
    let granted = 0;
    let used = 0;
    for (let i = 0; i < 200; i++) {
      const now = t0 + i * 250;
      const spend = Math.min(budget, i % 3);
      used += spend;
      const g = grants.grant('g', spend, 1000, now);
      granted += g.budget - (budget - spend);
      budget = g.budget;
    }
    const refilled = (200 * 250 * 60) / 60_000;
    assert.ok(used <= 5 + refilled, `used ${used}`);
    assert.ok(granted <= 5 + refilled + 1, `granted ${granted}`);
  });
});
