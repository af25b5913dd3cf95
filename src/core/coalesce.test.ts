import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { coalesced } from './coalesce.js';

test('callers during a run share one follow-up run that starts after their call', async () => {
  let runs = 0;
  const run = coalesced(async () => {
    runs++;
    await sleep(20);
  });
  const first = run();
  const joined = Array.from({ length: 10 }, () => run());
  await Promise.all([first, ...joined]);
  assert.equal(runs, 2);
  await run();
  assert.equal(runs, 3);
});

test('a failing run rejects its callers and does not block the next', async () => {
  let fail = true;
  const run = coalesced(async () => {
    if (fail) throw new Error('boom');
  });
  await assert.rejects(run(), /boom/);
  fail = false;
  await run();
});
