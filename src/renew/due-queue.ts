/**
 * An indexed binary min-heap of key → time: set, delete and peek by key in O(log N), so the
 * scheduler pops only what is due (O(due · log N)) and never scans every certificate. Ties pop
 * in no particular order. Not safe for concurrent use across awaits (it is synchronous anyway).
 */
export class DueQueue<K> {
  readonly #keys: K[] = [];
  readonly #times: number[] = [];
  readonly #index = new Map<K, number>();

  get size(): number {
    return this.#keys.length;
  }

  has(key: K): boolean {
    return this.#index.has(key);
  }

  /** The time set for `key`, if queued. */
  timeOf(key: K): number | undefined {
    const i = this.#index.get(key);
    return i === undefined ? undefined : this.#times[i];
  }

  /** Queues `key` at `time`, or moves it there when already queued. */
  set(key: K, time: number): void {
    const i = this.#index.get(key);
    if (i === undefined) {
      this.#keys.push(key);
      this.#times.push(time);
      this.#index.set(key, this.#keys.length - 1);
      this.#up(this.#keys.length - 1);
      return;
    }
    const old = this.#times[i]!;
    this.#times[i] = time;
    if (time < old) this.#up(i);
    else this.#down(i);
  }

  /** Removes `key`; false when it was not queued. */
  delete(key: K): boolean {
    const i = this.#index.get(key);
    if (i === undefined) return false;
    const last = this.#keys.length - 1;
    this.#swap(i, last);
    this.#keys.pop();
    this.#times.pop();
    this.#index.delete(key);
    if (i < last) {
      this.#up(i);
      this.#down(i);
    }
    return true;
  }

  /** The earliest entry, without removing it. */
  peek(): { key: K; time: number } | undefined {
    return this.#keys.length === 0 ? undefined : { key: this.#keys[0]!, time: this.#times[0]! };
  }

  /** Removes and returns the earliest entry. */
  pop(): { key: K; time: number } | undefined {
    const top = this.peek();
    if (top) this.delete(top.key);
    return top;
  }

  /** Removes and returns every key whose time is ≤ `now`, earliest first. */
  popDue(now: number): K[] {
    const due: K[] = [];
    while (this.#keys.length > 0 && this.#times[0]! <= now) due.push(this.pop()!.key);
    return due;
  }

  /** Every queued time, unordered (a copy): for estimates over what waits. */
  times(): Float64Array {
    return Float64Array.from(this.#times);
  }

  #up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#times[parent]! <= this.#times[i]!) return;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #down(i: number): void {
    const n = this.#keys.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let least = i;
      if (l < n && this.#times[l]! < this.#times[least]!) least = l;
      if (r < n && this.#times[r]! < this.#times[least]!) least = r;
      if (least === i) return;
      this.#swap(i, least);
      i = least;
    }
  }

  #swap(a: number, b: number): void {
    if (a === b) return;
    const ka = this.#keys[a]!;
    const kb = this.#keys[b]!;
    [this.#keys[a], this.#keys[b]] = [kb, ka];
    [this.#times[a], this.#times[b]] = [this.#times[b]!, this.#times[a]!];
    this.#index.set(kb, a);
    this.#index.set(ka, b);
  }
}
