import type { TokenBucket } from './rate-limit.js';
import { TtlCache } from './ttl-cache.js';

/** How long a grant lets HAProxy's Lua approve names: a stopped daemon stops all forging this soon. */
export const GRANT_VALID_MS = 1_000;
/** A grant's size, shared among the live grantees, unless its grantee used more last time. */
export const GRANT_MAX = 64;
/**
 * The most names one grant admits: a grantee that used n units gets up to 2n (so a busy HAProxy,
 * which asks again as soon as it runs out, keeps up with the rate limit), never more than this.
 * Every unit is taken from the bucket when granted, so a larger grant never passes the limit.
 */
export const GRANT_MAX_DEMAND = 512;
/** A grantee that stopped calling is forgotten after this (its last grant counted as used). */
const GRANTEE_TTL_MS = 10_000;
const MAX_GRANTEES = 1_024;

interface Outstanding {
  k: number;
  expires: number;
}

/**
 * Forge grants for HAProxy's local decisions (onDemand.forge without ask or per-client limit):
 * each HAProxy process (a "grantee") is given K units, taken from the daemon's global rate-limit
 * bucket and from the cap's remaining room, valid GRANT_VALID_MS. Its next call says how many it
 * used; the rest goes back to the bucket. Units outstanding in live grants count against the cap,
 * so grantees together never pass it. Synchronous, so safe in one process.
 */
export class ForgeGrants {
  private readonly outstanding = new TtlCache<Outstanding>(MAX_GRANTEES, GRANTEE_TTL_MS);

  constructor(private readonly bucket: TokenBucket) {}

  /**
   * Settles the grantee's previous grant (`used` of it), then gives a new one. `room` is what the
   * cap still allows before counting outstanding grants; `refuse` answers 0 (daemon stopping).
   *
   * The unused rest of the settled grant is carried into the new one (as far as the new one's
   * size and the cap allow; the remainder goes back to the bucket): HAProxy's Lua keeps spending
   * it while this call is out, and reports those names with the next call, against the new grant.
   * Without the carry, a name spent that way was refused whenever the bucket had just run dry.
   */
  grant(grantee: string, used: number, room: number, now = Date.now(), refuse = false): { budget: number; validMs: number } {
    const prev = this.outstanding.get(grantee, now);
    this.outstanding.delete(grantee);
    const carried = prev ? Math.max(0, prev.k - used) : 0;
    const free = Math.max(0, room - this.reserved(now));
    // Shared with the other live grantees (a fleet), so one HAProxy cannot hold the whole bucket.
    const share = Math.ceil(GRANT_MAX / Math.max(1, this.outstanding.size + 1));
    const demand = prev ? Math.min(2 * used, GRANT_MAX_DEMAND) : 0;
    const size = refuse ? 0 : Math.min(free, Math.max(share, demand));
    const kept = Math.min(carried, size);
    this.bucket.refund(carried - kept);
    const budget = kept + this.bucket.takeUpTo(size - kept, now);
    this.outstanding.set(grantee, { k: budget, expires: now + GRANT_VALID_MS }, now);
    return { budget, validMs: GRANT_VALID_MS };
  }

  /**
   * The units of the grant a call settles: the most new names its report may bring. Names beyond
   * it were not granted (a report is only as trusted as the token), so the rate limit holds even
   * against a caller that reports names it never had units for.
   */
  unsettled(grantee: string, now = Date.now()): number {
    return this.outstanding.get(grantee, now)?.k ?? 0;
  }

  /** Units in grants that may still be in use (for the cap). */
  reserved(now = Date.now()): number {
    let sum = 0;
    for (const [, o] of this.outstanding.live(now)) if (o.expires > now) sum += o.k;
    return sum;
  }
}
