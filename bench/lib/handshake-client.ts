import { Worker } from 'node:worker_threads';
import type { TimedHandshake } from './handshakes.js';

/**
 * Times handshakes on a worker thread. In production the daemon has a process of its own; in a
 * benchmark it shares the bench's process, so a client on the main thread would compete with it
 * for one event loop (and add its TLS work to every on-demand wait) — a handicap Caddy, a separate
 * process, would not have. Errors keep their `code` (e.g. a TLS alert).
 */
export class HandshakeClient {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (r: TimedHandshake) => void; reject: (e: Error) => void }>();
  private next = 0;
  private dead?: Error;

  constructor() {
    // tsx's loader is per thread and `--import tsx` does not reach a worker's entry: a JS shim registers it.
    this.worker = new Worker(new URL('./handshake-worker.mjs', import.meta.url));
    this.worker.on('message', (m: { id: number; result?: TimedHandshake; error?: string; code?: string }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.result) w?.resolve(m.result);
      else w?.reject(Object.assign(new Error(m.error), { code: m.code }));
    });
    this.worker.on('error', (err) => {
      this.dead = err;
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    });
  }

  /** A full handshake with 127.0.0.1:`port` for `name`, timed inside the worker. */
  timed(port: number, name: string, opts: { ca?: string; timeoutMs?: number } = {}): Promise<TimedHandshake> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, port, name, opts });
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
