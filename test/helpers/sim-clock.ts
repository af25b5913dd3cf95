import type { Clock } from '../../src/renew/clock.js';
import { DueQueue } from '../../src/renew/due-queue.js';

/**
 * A clock that moves only when told: timers fire in time order (ties in any order) as `run` advances it, and the
 * promises their callbacks start settle before the next timer (a macrotask turn between
 * timers). Weeks of scheduler time pass in seconds. One per test or bench run.
 */
export class SimClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new DueQueue<number>();
  readonly #callbacks = new Map<number, () => void>();

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, ms: number): () => void {
    const id = this.#seq++;
    this.#callbacks.set(id, fn);
    this.#timers.set(id, this.#now + Math.max(0, ms));
    return () => {
      this.#callbacks.delete(id);
      this.#timers.delete(id);
    };
  }

  /** A promise that settles after `ms` of clock time. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimer(resolve, ms));
  }

  /**
   * Fires every timer due up to `until`, in order, letting async work settle after each; ends at
   * `until`. Throws once more than `maxTimers` fired (a timer that re-arms itself at once spins).
   */
  async run(until: number, maxTimers = Infinity): Promise<void> {
    await settle();
    for (let fired = 0; ; fired++) {
      if (fired > maxTimers) throw new Error(`more than ${maxTimers} timers fired before ${new Date(until).toISOString()} (now ${new Date(this.#now).toISOString()}): something spins`);
      const next = this.#timers.peek();
      if (!next || next.time > until) break;
      this.#timers.pop();
      this.#now = Math.max(this.#now, next.time);
      const fn = this.#callbacks.get(next.key);
      this.#callbacks.delete(next.key);
      fn?.();
      await settle();
    }
    this.#now = Math.max(this.#now, until);
  }
}

/** Lets every pending promise chain run: a macrotask turn comes after all microtasks. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
