import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { TimedHandshake } from './handshakes.js';

/**
 * Times handshakes, and serves the `ask` endpoint (see ask-server.ts), on a worker thread. In
 * production the daemon has a process of its own and the ask service is someone else's; in a
 * benchmark the daemon shares the bench's process, so a client or an ask server on the main thread
 * would compete with it for one event loop — a handicap Caddy, a separate process, would not have.
 * Errors keep their `code` (e.g. a TLS alert).
 */
export class HandshakeClient {
  private readonly waiting = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();
  private next = 0;
  private dead?: Error;

  private constructor(
    private readonly worker: Worker,
    /** The ask endpoint: GET <askUrl>?domain=NAME answers 200 for every name. */
    readonly askUrl: string,
  ) {
    worker.on('message', (m: { id: number; result?: unknown; error?: string; code?: string }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.error === undefined) w?.resolve(m.result);
      else w?.reject(Object.assign(new Error(m.error), { code: m.code }));
    });
    worker.on('error', (err) => {
      this.dead = err;
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    });
  }

  static async start(): Promise<HandshakeClient> {
    // tsx's loader is per thread and `--import tsx` does not reach a worker's entry: a JS shim registers it.
    const worker = new Worker(new URL('./handshake-worker.mjs', import.meta.url));
    const [ready] = (await once(worker, 'message')) as [{ ready: string }];
    return new HandshakeClient(worker, ready.ready);
  }

  /** A full handshake with 127.0.0.1:`port` for `name`, timed inside the worker. */
  timed(port: number, name: string, opts: { ca?: string; timeoutMs?: number } = {}): Promise<TimedHandshake> {
    return this.call({ op: 'handshake', port, name, opts }) as Promise<TimedHandshake>;
  }

  /** Names the ask endpoint was asked about, in order. */
  asked(): Promise<string[]> {
    return this.call({ op: 'asked' }) as Promise<string[]>;
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }

  private call(message: object): Promise<unknown> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, ...message });
    });
  }
}
