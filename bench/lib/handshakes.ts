import { handshake, type Served } from '../../test/helpers/tls.js';

export type { Served } from '../../test/helpers/tls.js';

/** One TLS handshake on a new TCP connection, timed from connect to the server's certificate. */
export interface TimedHandshake {
  ms: number;
  served: Served;
}

/** A full handshake (no session reuse) with 127.0.0.1:`port` for SNI `name`, timed. */
export async function timedHandshake(port: number, name: string, opts: { ca?: string; timeoutMs?: number } = {}): Promise<TimedHandshake> {
  const t0 = performance.now();
  const served = await handshake(port, name, opts);
  return { ms: performance.now() - t0, served };
}

/**
 * Back-to-back handshakes until `name` is served with `serial`; resolves with the performance.now()
 * at which the first such handshake completed (so the resolution is one handshake, ~1–3 ms).
 * Failed handshakes (a listener between workers) are retried until the deadline.
 */
export async function servedAt(port: number, name: string, serial: string, timeoutMs = 120_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      if ((await handshake(port, name, { timeoutMs: 2_000 })).serial === serial) return performance.now();
    } catch {
      // Between workers during a reload: keep polling.
    }
    if (performance.now() > deadline) throw new Error(`${name} not served with serial ${serial} on port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setImmediate(r));
  }
}

/** Runs `fn` over items with at most `limit` in flight; results in input order. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}
