import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkBehind } from '../src/core/async.js';

test('WorkBehind: drain waits for tracked work, work tracked meanwhile, and swallows rejections', async () => {
  const behind = new WorkBehind();
  await behind.drain(); // nothing tracked: resolves at once
  const done: string[] = [];
  behind.track(sleep(20).then(() => done.push('a')));
  behind.track(Promise.reject(new Error('handled by its owner')));
  behind.track(
    sleep(10).then(() => {
      done.push('b');
      behind.track(sleep(20).then(() => done.push('c')));
    }),
  );
  await behind.drain();
  assert.deepEqual(done.sort(), ['a', 'b', 'c']);
});
