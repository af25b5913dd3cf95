import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DueQueue } from '../src/renew/due-queue.js';

test('pops in time order; set moves a key; delete takes it out', () => {
  const q = new DueQueue<string>();
  q.set('c', 30);
  q.set('a', 10);
  q.set('b', 20);
  q.set('d', 40);
  q.set('c', 5);
  assert.equal(q.delete('b'), true);
  assert.equal(q.delete('b'), false);
  assert.equal(q.size, 3);
  assert.equal(q.timeOf('d'), 40);
  assert.deepEqual(q.popDue(10), ['c', 'a']);
  assert.deepEqual(q.peek(), { key: 'd', time: 40 });
  assert.deepEqual(q.popDue(39), []);
  assert.equal(q.pop()?.key, 'd');
  assert.equal(q.pop(), undefined);
});

test('random operations against a sorted reference: the heap stays ordered and indexed', () => {
  const q = new DueQueue<number>();
  const ref = new Map<number, number>();
  let seed = 42;
  const rand = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
  for (let step = 0; step < 20_000; step++) {
    const key = Math.floor(rand() * 500);
    const op = rand();
    if (op < 0.5) {
      const t = Math.floor(rand() * 1_000);
      q.set(key, t);
      ref.set(key, t);
    } else if (op < 0.8) {
      assert.equal(q.delete(key), ref.delete(key));
    } else {
      const now = Math.floor(rand() * 1_000);
      const popped = q.popDue(now);
      const expected = [...ref].filter(([, t]) => t <= now);
      assert.deepEqual(new Set(popped), new Set(expected.map(([k]) => k)));
      const times = popped.map((k) => ref.get(k)!);
      assert.deepEqual(times, [...times].sort((a, b) => a - b), 'earliest first');
      for (const k of popped) ref.delete(k);
    }
    assert.equal(q.size, ref.size);
  }
});

test('with 100,000 queued, a look takes out only what is due', () => {
  const q = new DueQueue<number>();
  for (let i = 99_999; i >= 0; i--) q.set(i, 1_000 + i);
  assert.deepEqual(q.popDue(1_009), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(q.size, 99_990);
  assert.deepEqual(q.peek(), { key: 10, time: 1_010 });
});
