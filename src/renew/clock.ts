import { MAX_TIMER_MS } from '../config/duration.js';

/**
 * The scheduler's time: what it is now and a timer. Injected so a bench can run weeks of
 * renewals in seconds (a simulated clock), the system clock otherwise.
 */
export interface Clock {
  now(): number;
  /** Calls `fn` once after `ms`; the returned function cancels it. Never keeps the process alive. */
  setTimer(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    // Node fires at once for anything above 2^31 - 1 ms: cap it (the caller re-arms on waking).
    const timer = setTimeout(fn, Math.max(0, Math.min(ms, MAX_TIMER_MS)));
    timer.unref();
    return () => clearTimeout(timer);
  },
};
