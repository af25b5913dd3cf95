import type { OnDemandSpec } from '../config/schema.js';
import { AskClient } from './ask.js';
import { matchesAny } from './patterns.js';
import { KeyedRateLimit, TokenBucket } from './rate-limit.js';
import { TtlCache } from './ttl-cache.js';

/**
 * Forge decisions can be taken in HAProxy's Lua (with grants) exactly when no check needs a
 * per-handshake round trip: no ask URL, no per-client rate limit.
 */
export function decidesLocally(spec: Pick<OnDemandSpec, 'forge' | 'ask' | 'rateLimit'>): boolean {
  return spec.forge && !spec.ask && !spec.rateLimit.perClientPerMinute;
}

export type Verdict =
  | { allow: true }
  | { allow: false; status: 'refused' | 'limited'; reason: string };

const NEGATIVE_ENTRIES = 10_000;
const NEGATIVE_TTL_MS = 10 * 60_000;

/**
 * Who may get a certificate during a handshake. Cheap checks first, and every check that can be
 * driven by random SNIs is bounded: patterns, a negative cache (bounded, so a flood of random
 * names costs fixed memory), the certificate cap, rate limits (per client, then global) — all in
 * screen() — and the operator's ask URL last, in approve() (it costs a request). Safe to call
 * concurrently.
 */
export class OnDemandPolicy {
  private readonly refused = new TtlCache<string>(NEGATIVE_ENTRIES, NEGATIVE_TTL_MS);
  /** The global bucket: forge grants take from it too (ForgeGrants). */
  readonly global: TokenBucket;
  private readonly perClient?: KeyedRateLimit;
  private readonly ask?: AskClient;

  constructor(private readonly spec: OnDemandSpec) {
    this.global = new TokenBucket(spec.rateLimit.perMinute, spec.rateLimit.burst);
    if (spec.rateLimit.perClientPerMinute) {
      const perMinute = spec.rateLimit.perClientPerMinute;
      this.perClient = new KeyedRateLimit(perMinute, Math.max(1, Math.min(spec.rateLimit.burst, perMinute)));
    }
    if (spec.ask) this.ask = new AskClient(spec.ask, spec.askTimeout);
  }

  /**
   * Every check but the ask URL, at once (spends rate-limit tokens when it allows). `count` is how
   * many on-demand certificates exist now (for the cap).
   */
  screen(name: string, client: string, count: number): Verdict {
    const cached = this.refused.get(name);
    if (cached) return { allow: false, status: 'refused', reason: cached };
    if (matchesAny(name, this.spec.deny)) return this.refuse(name, 'denied');
    if (!matchesAny(name, this.spec.allow)) return this.refuse(name, 'not-allowed');
    if (count >= this.spec.maxCertificates) return { allow: false, status: 'limited', reason: 'cap' };
    if (this.perClient && !this.perClient.take(client || 'unknown')) return { allow: false, status: 'limited', reason: 'rate-client' };
    if (!this.global.take()) return { allow: false, status: 'limited', reason: 'rate-global' };
    return { allow: true };
  }

  /**
   * The checks a name HAProxy approved on its own (forge grant) goes through again: negative
   * cache and patterns. No token: the grant already spent it.
   */
  recheck(name: string): Verdict {
    const cached = this.refused.get(name);
    if (cached) return { allow: false, status: 'refused', reason: cached };
    if (matchesAny(name, this.spec.deny)) return this.refuse(name, 'denied');
    if (!matchesAny(name, this.spec.allow)) return this.refuse(name, 'not-allowed');
    return { allow: true };
  }

  /** The operator's word through the ask URL (allowed when none is configured). */
  async approve(name: string): Promise<Verdict> {
    if (!this.ask) return { allow: true };
    const asked = await this.ask.allows(name);
    return asked.allowed ? { allow: true } : { allow: false, status: 'refused', reason: asked.reason };
  }

  /** Closes the ask URL's kept-alive connections. */
  close(): void {
    this.ask?.close();
  }

  /** Remembers a failure for a while so a name the CA refuses is not retried at every handshake. */
  backOff(name: string, reason: string, ms: number): void {
    this.refused.set(name, reason, Date.now(), ms);
  }

  private refuse(name: string, reason: string): Verdict {
    this.refused.set(name, reason);
    return { allow: false, status: 'refused', reason };
  }
}
