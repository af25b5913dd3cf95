/**
 * Concurrent calls for one key share the first call's promise (per-name single-flight inside one
 * daemon; the store lock covers several daemons). Safe to call concurrently.
 */
export class SingleFlight<T> {
  private readonly inflight = new Map<string, Promise<T>>();

  run(key: string, fn: () => Promise<T>): Promise<T> {
    const current = this.inflight.get(key);
    if (current) return current;
    const p = fn().finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  get size(): number {
    return this.inflight.size;
  }
}
