/** A CA's limit on new orders: at most `orders` in any window of `perMs` (Let's Encrypt: 300 per 3 h per account). */
export interface OrderLimit {
  orders: number;
  perMs: number;
  /** Renewals in the CA's ARI window that name what they replace are not counted (Let's Encrypt exempts them). */
  ariExempt: boolean;
}

/**
 * A sliding log of the orders one issuer placed: a new order is allowed only while fewer than
 * `orders` were placed in the last `perMs`, so no window of that length ever holds more — a token
 * bucket would allow a burst of 2× at its edges. Memory is bounded by `orders`. Synchronous; the
 * caller's clock is passed in, so a bench can compress time.
 */
export class OrderBudget {
  /** Times of the orders still inside the window, oldest first. */
  readonly #log: number[] = [];

  constructor(readonly limit: OrderLimit) {
    if (!(limit.orders >= 1) || !(limit.perMs > 0)) throw new RangeError('an order limit needs orders ≥ 1 and a period > 0');
  }

  /** Orders placed in the window ending at `now`. */
  used(now: number): number {
    this.#expire(now);
    return this.#log.length;
  }

  /** Records one order at `now` when the window has room; false (and nothing recorded) when not. */
  tryTake(now: number): boolean {
    this.#expire(now);
    if (this.#log.length >= this.limit.orders) return false;
    this.#log.push(now);
    return true;
  }

  /** When the next order will be allowed (`now` when it is). */
  nextFreeAt(now: number): number {
    this.#expire(now);
    return this.#log.length < this.limit.orders ? now : this.#log[0]! + this.limit.perMs;
  }

  /**
   * When the k-th (0-based) of a queue of orders could start if each starts as soon as the window
   * allows: free slots now, then each logged order's slot a period after it, then every slot again
   * one period later per round. For the shortfall estimate: pure, O(1).
   */
  startOf(k: number, now: number): number {
    this.#expire(now);
    const { orders, perMs } = this.limit;
    const free = orders - this.#log.length;
    const slot = k % orders;
    const round = Math.floor(k / orders);
    // A free slot behaves as if used exactly one period ago.
    const lastUse = slot < free ? now - perMs : this.#log[slot - free]!;
    return Math.max(now, lastUse + perMs * (round + 1));
  }

  #expire(now: number): void {
    const cutoff = now - this.limit.perMs;
    let drop = 0;
    while (drop < this.#log.length && this.#log[drop]! <= cutoff) drop++;
    if (drop > 0) this.#log.splice(0, drop);
  }
}

/**
 * How many of the waiting orders (their expiry times, any order) cannot start before they expire
 * at the budget's pace, serving the soonest-expiring first. O(W log W) for W waiting.
 */
export function budgetShortfall(budget: OrderBudget, expiries: Float64Array, now: number): number {
  const sorted = expiries.slice().sort();
  let short = 0;
  for (let k = 0; k < sorted.length; k++) if (budget.startOf(k, now) >= sorted[k]!) short++;
  return short;
}
