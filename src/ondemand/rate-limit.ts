import { TtlCache } from './ttl-cache.js';

/** A token bucket: `burst` tokens, refilled at `perMinute`. Synchronous, so safe in one process. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perMinute: number,
    private readonly burst: number,
    now = Date.now(),
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes up to `n` whole tokens at once (a forge grant); returns how many. */
  takeUpTo(n: number, now = Date.now()): number {
    this.refill(now);
    const k = Math.max(0, Math.min(n, Math.floor(this.tokens)));
    this.tokens -= k;
    return k;
  }

  /** Gives back tokens taken and not used (a grant's unused part), never past the burst. */
  refund(n: number): void {
    this.tokens = Math.min(this.burst, this.tokens + n);
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perMinute) / 60_000);
    this.last = now;
  }

  /** Takes one token if there is one. */
  take(now = Date.now()): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** One bucket per key (client address), at most `maxKeys` of them: a flood from many addresses stays bounded. */
export class KeyedRateLimit {
  private readonly buckets: TtlCache<TokenBucket>;

  constructor(
    private readonly perMinute: number,
    private readonly burst: number,
    maxKeys = 10_000,
  ) {
    // A bucket idle long enough to be full again can be forgotten.
    this.buckets = new TtlCache(maxKeys, Math.ceil((burst / perMinute) * 60_000) + 1_000);
  }

  take(key: string, now = Date.now()): boolean {
    let bucket = this.buckets.get(key, now);
    if (!bucket) {
      bucket = new TokenBucket(this.perMinute, this.burst, now);
    }
    const ok = bucket.take(now);
    this.buckets.set(key, bucket, now);
    return ok;
  }
}
