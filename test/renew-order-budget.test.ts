import { test } from 'node:test';
import assert from 'node:assert/strict';
import { budgetShortfall, OrderBudget } from '../src/renew/order-budget.js';

const H = 3_600_000;

test('sliding log: never more than `orders` in any window of `per`', () => {
  const b = new OrderBudget({ orders: 3, perMs: 3 * H, ariExempt: true });
  assert.equal(b.tryTake(0), true);
  assert.equal(b.tryTake(H), true);
  assert.equal(b.tryTake(H), true);
  assert.equal(b.tryTake(2 * H), false, 'full');
  assert.equal(b.used(2 * H), 3);
  assert.equal(b.nextFreeAt(2 * H), 3 * H, 'the oldest leaves the window');
  assert.equal(b.tryTake(3 * H - 1), false);
  assert.equal(b.tryTake(3 * H), true);
  assert.equal(b.tryTake(3 * H), false, 'the two at 1 h are still inside');
  assert.equal(b.nextFreeAt(3 * H), 4 * H);
});

test('a greedy user of the budget never exceeds it in any window (checked at every order)', () => {
  const b = new OrderBudget({ orders: 300, perMs: 3 * H, ariExempt: false });
  const taken: number[] = [];
  for (let t = 0; t < 30 * H; t += 7_000) if (b.tryTake(t)) taken.push(t);
  for (let i = 300; i < taken.length; i++) assert.ok(taken[i]! - taken[i - 300]! >= 3 * H, `order ${i}`);
  assert.ok(taken.length >= 300 * 10, `${taken.length} orders in 30 h: the budget is used, not wasted`);
});

test('startOf: free slots now, then each slot a period after its last use, round after round', () => {
  const b = new OrderBudget({ orders: 2, perMs: 10, ariExempt: false });
  assert.deepEqual([0, 1, 2, 3, 4].map((k) => b.startOf(k, 0)), [0, 0, 10, 10, 20]);
  b.tryTake(0);
  assert.deepEqual([0, 1, 2, 3].map((k) => b.startOf(k, 5)), [5, 10, 15, 20]);
});

test('rejects a budget that cannot place an order', () => {
  assert.throws(() => new OrderBudget({ orders: 0, perMs: 1, ariExempt: false }), RangeError);
});

test('shortfall: how many waiting orders the pace cannot start before they expire', () => {
  const b = new OrderBudget({ orders: 10, perMs: H, ariExempt: false });
  // 25 orders waiting, all expiring at 2 h: 10 now, 10 at 1 h, 5 at 2 h (too late).
  assert.equal(budgetShortfall(b, new Float64Array(25).fill(2 * H), 0), 5);
  assert.equal(budgetShortfall(b, new Float64Array(25).fill(3 * H), 0), 0);
  assert.equal(budgetShortfall(b, new Float64Array(0), 0), 0);
});
