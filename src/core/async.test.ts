import { test } from 'node:test';
import assert from 'node:assert/strict';
import { coalesced, forEachLimited, KeyedQueue, SerialQueue, SingleFlight, sleep, untilAborted, withTimeout } from './async.js';

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

test('sleep waits, and rejects with the signal reason when aborted before or during the wait', async () => {
  const t0 = performance.now();
  await sleep(20);
  assert.ok(performance.now() - t0 >= 15);
  const before = new AbortController();
  before.abort(new Error('gone before'));
  await assert.rejects(sleep(10_000, before.signal), /gone before/);
  const during = new AbortController();
  const waiting = sleep(10_000, during.signal, { unref: true });
  setTimeout(() => during.abort(new Error('gone during')), 10);
  await assert.rejects(waiting, /gone during/);
});

test('untilAborted settles with the promise, or with the reason as soon as the signal aborts', async () => {
  assert.equal(await untilAborted(Promise.resolve(1)), 1);
  assert.equal(await untilAborted(Promise.resolve(2), new AbortController().signal), 2);
  await assert.rejects(untilAborted(Promise.reject(new Error('own')), new AbortController().signal), /own/);
  const ac = new AbortController();
  const never = new Promise<number>(() => {});
  setTimeout(() => ac.abort(new Error('stopped')), 10);
  await assert.rejects(untilAborted(never, ac.signal), /stopped/);
});

test('withTimeout: the promise when in time, else what onTimeout returns or throws', async () => {
  assert.equal(await withTimeout(Promise.resolve('on time'), 1_000, () => 'late'), 'on time');
  assert.equal(await withTimeout(sleep(1_000, undefined, { unref: true }).then(() => 'slow'), 10, () => 'late'), 'late');
  await assert.rejects(
    withTimeout(new Promise(() => {}), 10, () => {
      throw new Error('took too long');
    }),
    /took too long/,
  );
  await assert.rejects(withTimeout(Promise.reject(new Error('own failure')), 1_000, () => 'late'), /own failure/);
});

test('SerialQueue runs jobs one at a time in call order; a failure does not stop it; a job aborted while waiting never starts', async () => {
  const q = new SerialQueue();
  const log: string[] = [];
  let running = 0;
  const job = (name: string, fail = false) => async () => {
    assert.equal(++running, 1, 'one at a time');
    await sleep(5);
    log.push(name);
    running--;
    if (fail) throw new Error(`${name} failed`);
    return name;
  };
  const ac = new AbortController();
  const results = [q.run(job('a')), q.run(job('b', true)), q.run(job('c'), ac.signal), q.run(job('d'))];
  assert.equal(q.size, 4);
  ac.abort(new Error('not wanted'));
  const settled = await Promise.allSettled(results);
  assert.deepEqual(log, ['a', 'b', 'd']);
  assert.deepEqual(settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message)), ['a', 'b failed', 'not wanted', 'd']);
  assert.equal(q.size, 0);
});

test('KeyedQueue: one key at a time, different keys side by side, empty keys dropped', async () => {
  const q = new KeyedQueue<string>();
  const log: string[] = [];
  const job = (name: string, ms: number) => async () => {
    log.push(`${name}+`);
    await sleep(ms);
    log.push(`${name}-`);
  };
  const all = [q.run('x', job('x1', 20)), q.run('x', job('x2', 1)), q.run('y', job('y1', 1))];
  assert.equal(q.size, 2);
  await Promise.all(all);
  assert.deepEqual(log, ['x1+', 'y1+', 'y1-', 'x1-', 'x2+', 'x2-']);
  assert.equal(q.size, 0);
  await assert.rejects(q.run('x', () => Promise.reject(new Error('boom'))), /boom/);
  await q.run('x', async () => undefined);
  assert.equal(q.size, 0);
});

test('SingleFlight: concurrent calls for one key share the first call, a settled key runs again', async () => {
  const flights = new SingleFlight<number>();
  let calls = 0;
  const fn = async () => {
    calls++;
    await sleep(10);
    return calls;
  };
  const [a, b, c] = await Promise.all([flights.run('k', fn), flights.run('k', fn), flights.run('other', fn)]);
  assert.equal(a, b);
  assert.equal(calls, 2);
  assert.ok(c !== undefined);
  assert.equal(flights.size, 0);
  await flights.run('k', fn);
  assert.equal(calls, 3);
});

test('forEachLimited keeps at most `limit` calls in flight, visits every item, rejects on a failure', async () => {
  let inFlight = 0;
  let most = 0;
  const seen: number[] = [];
  await forEachLimited([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
    most = Math.max(most, ++inFlight);
    await sleep(5);
    seen.push(n);
    inFlight--;
  });
  assert.equal(most, 3);
  assert.deepEqual(seen.sort(), [1, 2, 3, 4, 5, 6, 7]);
  await forEachLimited([], 3, async () => assert.fail('no items, no calls'));
  await assert.rejects(
    forEachLimited([1, 2], 2, async (n) => {
      if (n === 2) throw new Error('item 2');
    }),
    /item 2/,
  );
});
