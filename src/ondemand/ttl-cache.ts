/**
 * A bounded cache with per-entry expiry: the oldest entry goes first when full, so a flood of
 * random names costs a fixed amount of memory. Not for concurrent mutation across awaits (it is
 * synchronous, which is all JavaScript needs).
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expires: number }>();

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number,
  ) {}

  get(key: string, now = Date.now()): V | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    if (hit.expires <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return hit.value;
  }

  set(key: string, value: V, now = Date.now(), ttlMs = this.ttlMs): void {
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { value, expires: now + ttlMs });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** The live entries (expired ones are dropped on the way). */
  *live(now = Date.now()): IterableIterator<[string, V]> {
    for (const [key, hit] of this.entries) {
      if (hit.expires <= now) this.entries.delete(key);
      else yield [key, hit.value];
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
