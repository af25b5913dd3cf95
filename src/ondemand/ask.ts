import { TtlCache } from './ttl-cache.js';

const ASK_CACHE_MS = 60_000;
const ASK_CACHE_ENTRIES = 10_000;

/**
 * The operator's veto: GET `<ask>?domain=<name>` (Caddy's convention) must answer 2xx for the name
 * to be issued. Fails closed: a timeout, an error or any other status refuses. Answers are cached
 * for a minute, both ways. Safe to call concurrently.
 */
export class AskClient {
  private readonly cache = new TtlCache<boolean>(ASK_CACHE_ENTRIES, ASK_CACHE_MS);

  constructor(
    private readonly url: string,
    private readonly timeoutMs: number,
  ) {}

  async allows(name: string): Promise<{ allowed: boolean; reason: string }> {
    const cached = this.cache.get(name);
    if (cached !== undefined) return { allowed: cached, reason: cached ? 'ask-allowed' : 'ask-refused' };
    const target = new URL(this.url);
    target.searchParams.set('domain', name);
    let allowed: boolean;
    try {
      const res = await fetch(target, { signal: AbortSignal.timeout(this.timeoutMs), redirect: 'manual' });
      await res.body?.cancel();
      allowed = res.status >= 200 && res.status < 300;
    } catch {
      // Not cached: an ask service that was briefly down should not veto for a whole minute.
      return { allowed: false, reason: 'ask-unreachable' };
    }
    this.cache.set(name, allowed);
    return { allowed, reason: allowed ? 'ask-allowed' : 'ask-refused' };
  }
}
