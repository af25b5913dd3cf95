import { createAgents, destroyAgents, httpRequest, type RequestFailure } from '../core/http-request.js';
import { TtlCache } from './ttl-cache.js';

const ASK_CACHE_MS = 60_000;
const ASK_CACHE_ENTRIES = 10_000;

/** A failed ask; only its kind matters (every failure refuses). */
class AskFailedError extends Error {
  constructor(readonly failure: RequestFailure) {
    super(failure.kind === 'error' ? failure.detail : failure.kind);
  }
}

/**
 * The operator's veto: GET `<ask>?domain=<name>` (Caddy's convention) must answer 2xx for the name
 * to be issued. Fails closed: a timeout, an error or any other status refuses. Answers are cached
 * for a minute, both ways. Sent over node:http with kept-alive connections: a handshake waits for
 * the answer, and global fetch cost ~0.7 ms more per ask here. Safe to call concurrently.
 */
export class AskClient {
  private readonly cache = new TtlCache<boolean>(ASK_CACHE_ENTRIES, ASK_CACHE_MS);
  private readonly agents = createAgents({ keepAlive: true, maxSockets: 16 });

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
      allowed = await this.ask(target);
    } catch {
      // Not cached: an ask service that was briefly down should not veto for a whole minute.
      return { allowed: false, reason: 'ask-unreachable' };
    }
    this.cache.set(name, allowed);
    return { allowed, reason: allowed ? 'ask-allowed' : 'ask-refused' };
  }

  /** Closes kept-alive connections. */
  close(): void {
    destroyAgents(this.agents);
  }

  private async ask(target: URL, retried = false): Promise<boolean> {
    try {
      const reply = await httpRequest(target, {
        agents: this.agents,
        method: 'GET',
        headers: {},
        timeoutMs: this.timeoutMs,
        maxBodyBytes: 64 * 1024,
        fail: (failure) => new AskFailedError(failure),
      });
      return reply.status >= 200 && reply.status < 300;
    } catch (err) {
      // The ask service closed a kept-alive connection meanwhile: once more on a new one.
      if (!retried && err instanceof AskFailedError && err.failure.kind === 'error' && err.failure.staleSocket) return this.ask(target, true);
      throw err;
    }
  }
}
