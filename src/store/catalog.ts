import { certMatcher, type CertQuery } from './cert-query.js';
import type { CertMeta, DnsRecordEntry, Lock, LockOptions, PendingIssue, Store, StoredCert, WriteOptions } from './store.js';

/** One change to the catalog: `meta` is the new metadata, absent when the certificate was removed. */
export interface CatalogChange {
  id: string;
  meta?: CertMeta;
}

/** The two orders a page can be read in: by id (the primary name), or soonest expiry first. */
export type CatalogOrder = 'name' | 'expiry';

export interface PageRequest {
  /** A `next` from the page before, in the same order: the page starts after it. */
  after?: string;
  limit: number;
  filter?: CertQuery;
  /** Default 'name'. */
  order?: CatalogOrder;
}

export interface CatalogPage {
  certs: CertMeta[];
  /** Where the next page starts (give it as `after`); absent on the last page. */
  next?: string;
}

/** A certificate as the indexes hold it: notAfter parsed once, for the expiry order. */
interface Entry {
  meta: CertMeta;
  expiresAt: number;
}

/**
 * Every stored certificate's metadata in memory, loaded once from the store and kept current by
 * the CatalogStore that writes through it: listing, counting, finding a name and planning
 * renewals read it instead of reading N records from the store. Holds metadata only (a few
 * hundred bytes each), never keys or PEMs.
 * Two sorted indexes (by id, by expiry) are kept in step on every change (a binary search and one
 * splice, ~50 µs at 100,000), so a page costs O(log N + what it scans), never a sort of N; counts
 * by origin and issuer are kept as numbers. Pages are keyset-paged: a cursor is the last key seen,
 * so certificates inserted or removed meanwhile never make a page repeat or skip one that stayed.
 * Changes another process makes to a shared store reach it only through refresh(id).
 * Not for concurrent mutation (its writers are the CatalogStore's awaited saves); reads are sync.
 */
export class CertCatalog {
  readonly #byId = new Map<string, Entry>();
  /**
   * Name → the id having it, or the ids when several do (names are unique per certificate, not
   * across certificates). A plain id in the common case: a Set per name was ~200 B a certificate.
   */
  readonly #byName = new Map<string, string | Set<string>>();
  /** Sorted by id. */
  readonly #nameOrder: Entry[] = [];
  /** Sorted by (expiresAt, id). */
  readonly #expiryOrder: Entry[] = [];
  readonly #origins = new Map<string, number>();
  readonly #issuers = new Map<string, number>();
  readonly #listeners = new Set<(change: CatalogChange) => void>();
  /** all()'s answer; made again on the first read after a change. */
  #snapshot?: CertMeta[];

  constructor(metas: Iterable<CertMeta> = []) {
    const latest = new Map<string, CertMeta>();
    for (const meta of metas) latest.set(meta.id, meta);
    for (const meta of latest.values()) {
      const entry = toEntry(meta, { origins: this.#origins, issuers: this.#issuers });
      this.#index(entry);
      this.#nameOrder.push(entry);
      this.#expiryOrder.push(entry);
    }
    // One sort each at load instead of N sorted inserts.
    this.#nameOrder.sort(byName);
    this.#expiryOrder.sort(byExpiry);
  }

  /** Loads the catalog from every certificate's metadata in the store. */
  static async load(store: Pick<Store, 'listCerts'>): Promise<CertCatalog> {
    return new CertCatalog(await store.listCerts());
  }

  get size(): number {
    return this.#byId.size;
  }

  get(id: string): CertMeta | undefined {
    return this.#byId.get(id)?.meta;
  }

  /** The certificate with this id, else the first (by id) that has it among its names. */
  find(idOrName: string): CertMeta | undefined {
    const direct = this.#byId.get(idOrName);
    if (direct) return direct.meta;
    const ids = this.#byName.get(idOrName);
    if (ids === undefined) return undefined;
    return this.#byId.get(typeof ids === 'string' ? ids : [...ids].sort(compare)[0]!)?.meta;
  }

  /** Every certificate's metadata, sorted by id. The array is shared: do not mutate it. O(N) after a change. */
  all(): readonly CertMeta[] {
    this.#snapshot ??= this.#nameOrder.map((e) => e.meta);
    return this.#snapshot;
  }

  /**
   * How many match: O(1) for none, one origin or one issuer; O(log N) for expiresBefore alone;
   * a scan otherwise (and with a predicate).
   */
  count(match?: CertQuery | ((meta: CertMeta) => boolean)): number {
    if (match === undefined) return this.#byId.size;
    if (typeof match === 'function') {
      let n = 0;
      for (const e of this.#byId.values()) if (match(e.meta)) n++;
      return n;
    }
    const keys = Object.entries(match).filter(([, v]) => v !== undefined && v !== '').map(([k]) => k);
    if (keys.length === 0) return this.#byId.size;
    if (keys.length === 1 && match.origin !== undefined) return this.#origins.get(match.origin) ?? 0;
    if (keys.length === 1 && match.issuer !== undefined) return this.#issuers.get(match.issuer) ?? 0;
    const end = match.expiresBefore === undefined ? this.#expiryOrder.length : this.#expiryEnd(match.expiresBefore);
    if (keys.length === 1) return end;
    const test = certMatcher(match)!;
    let n = 0;
    for (let i = 0; i < end; i++) if (test(this.#expiryOrder[i]!.meta)) n++;
    return n;
  }

  /** Every certificate, soonest expiry first (ties by id); a change during the iteration is not allowed. */
  *byExpiry(): Generator<CertMeta> {
    for (const e of this.#expiryOrder) yield e.meta;
  }

  /** Issuer ids with at least one certificate, sorted. */
  issuers(): string[] {
    return [...this.#issuers.keys()].sort(compare);
  }

  /**
   * Up to `limit` certificates matching the filter, in the order asked, after the cursor: a binary
   * search to the cursor, then a scan until the page is full (and one more match, to know whether
   * a next page exists). The metadata objects are shared: do not mutate them.
   */
  page(req: PageRequest): CatalogPage {
    const order = req.order ?? 'name';
    const list = order === 'name' ? this.#nameOrder : this.#expiryOrder;
    const test = req.filter ? certMatcher(req.filter) : undefined;
    let i = req.after === undefined ? 0 : order === 'name' ? upperBound(list, (e) => compare(e.meta.id, req.after!)) : upperBound(list, expiryAfter(req.after));
    // Soonest first: nothing past expiresBefore can match, so the scan stops there.
    const end = order === 'expiry' && req.filter?.expiresBefore !== undefined ? this.#expiryEnd(req.filter.expiresBefore) : list.length;
    const certs: CertMeta[] = [];
    let last: Entry | undefined;
    for (; i < end; i++) {
      const e = list[i]!;
      if (test && !test(e.meta)) continue;
      if (certs.length === req.limit) return { certs, next: cursorOf(order, last!) };
      certs.push(e.meta);
      last = e;
    }
    return { certs };
  }

  /** Called after every change, synchronously; returns the unsubscribe function. */
  onChange(listener: (change: CatalogChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Records a saved certificate's metadata. */
  put(meta: CertMeta): void {
    const old = this.#byId.get(meta.id);
    const entry = toEntry(meta, { origins: this.#origins, issuers: this.#issuers });
    // A renewal keeps its id (its place in the name order) and usually moves in the expiry order;
    // where a place stays, the entry is swapped in it (no splice of N).
    const nameAt = old ? indexOf(this.#nameOrder, old, byName) : -1;
    const expiryAt = old && old.expiresAt === entry.expiresAt ? indexOf(this.#expiryOrder, old, byExpiry) : -1;
    if (old) this.#unindex(old, { keepName: nameAt >= 0, keepExpiry: expiryAt >= 0 });
    this.#index(entry);
    if (nameAt >= 0) this.#nameOrder[nameAt] = entry;
    else this.#nameOrder.splice(upperBound(this.#nameOrder, (e) => byName(e, entry)), 0, entry);
    if (expiryAt >= 0) this.#expiryOrder[expiryAt] = entry;
    else this.#expiryOrder.splice(upperBound(this.#expiryOrder, (e) => byExpiry(e, entry)), 0, entry);
    this.#changed({ id: meta.id, meta });
  }

  /** Forgets a removed certificate; a missing id is fine. */
  delete(id: string): void {
    if (!this.#remove(id)) return;
    this.#changed({ id });
  }

  /** Reads one certificate's metadata again from the store (another process changed it). */
  async refresh(store: Pick<Store, 'loadCert'>, id: string): Promise<void> {
    const cert = await store.loadCert(id);
    if (cert) this.put(cert.meta);
    else this.delete(id);
  }

  /** The number of certificates expiring before `iso` (the end of that prefix of the expiry order). */
  #expiryEnd(iso: string): number {
    const before = Date.parse(iso);
    return upperBound(this.#expiryOrder, (e) => (e.expiresAt < before ? -1 : 1));
  }

  /** Adds to the maps and counts (not the sorted orders). */
  #index(entry: Entry): void {
    const { meta } = entry;
    this.#byId.set(meta.id, entry);
    for (const name of meta.names) {
      const ids = this.#byName.get(name);
      if (ids === undefined || ids === meta.id) this.#byName.set(name, meta.id);
      else if (typeof ids === 'string') this.#byName.set(name, new Set([ids, meta.id]));
      else ids.add(meta.id);
    }
    bump(this.#origins, meta.origin, 1);
    bump(this.#issuers, meta.issuer, 1);
    this.#snapshot = undefined;
  }

  #remove(id: string): boolean {
    const old = this.#byId.get(id);
    if (!old) return false;
    this.#unindex(old, { keepName: false, keepExpiry: false });
    return true;
  }

  /** Takes an entry out of the maps and counts, and out of the orders not kept (put swaps it there). */
  #unindex(old: Entry, keep: { keepName: boolean; keepExpiry: boolean }): void {
    const { id } = old.meta;
    this.#byId.delete(id);
    for (const name of old.meta.names) {
      const ids = this.#byName.get(name);
      if (ids === id) this.#byName.delete(name);
      else if (typeof ids === 'object') {
        ids.delete(id);
        if (ids.size === 1) this.#byName.set(name, [...ids][0]!);
      }
    }
    bump(this.#origins, old.meta.origin, -1);
    bump(this.#issuers, old.meta.issuer, -1);
    if (!keep.keepName) removeAt(this.#nameOrder, indexOf(this.#nameOrder, old, byName));
    if (!keep.keepExpiry) removeAt(this.#expiryOrder, indexOf(this.#expiryOrder, old, byExpiry));
    this.#snapshot = undefined;
  }

  #changed(change: CatalogChange): void {
    for (const listener of this.#listeners) listener(change);
  }
}

/**
 * The catalog's entry for `meta`, whose equal strings are made one (a primary name equal to the
 * id; issuer and origin, from the few held as count keys): each is a string per certificate less
 * at 100,000. Values are unchanged.
 */
function toEntry(meta: CertMeta, shared: { origins: ReadonlyMap<string, number>; issuers: ReadonlyMap<string, number> }): Entry {
  if (meta.names[0] === meta.id) meta.names[0] = meta.id;
  meta.issuer = keyOf(shared.issuers, meta.issuer);
  meta.origin = keyOf(shared.origins, meta.origin) as CertMeta['origin'];
  const t = Date.parse(meta.notAfter);
  return { meta, expiresAt: Number.isNaN(t) ? 0 : t };
}

/** The key of `counts` equal to `value` when there is one (the held string), else `value`. */
function keyOf(counts: ReadonlyMap<string, number>, value: string): string {
  if (!counts.has(value)) return value;
  for (const k of counts.keys()) if (k === value) return k;
  return value;
}

function byName(a: Entry, b: Entry): number {
  return compare(a.meta.id, b.meta.id);
}

function byExpiry(a: Entry, b: Entry): number {
  return a.expiresAt - b.expiresAt || compare(a.meta.id, b.meta.id);
}

/** A cursor is the last key of the page: the id, or `<expiresAt ms>:<id>` in the expiry order. */
function cursorOf(order: CatalogOrder, e: Entry): string {
  return order === 'name' ? e.meta.id : `${e.expiresAt}:${e.meta.id}`;
}

function expiryAfter(cursor: string): (e: Entry) => number {
  const colon = cursor.indexOf(':');
  const at = Number(cursor.slice(0, colon));
  const id = cursor.slice(colon + 1);
  return (e) => e.expiresAt - at || compare(e.meta.id, id);
}

/** The first index whose element compares > 0 (cmp(e) says how e compares to the sought key). */
function upperBound<T>(list: readonly T[], cmp: (e: T) => number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cmp(list[mid]!) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Where `entry` itself sits in a sorted list, or -1. */
function indexOf(list: readonly Entry[], entry: Entry, cmp: (a: Entry, b: Entry) => number): number {
  const i = upperBound(list, (e) => cmp(e, entry)) - 1;
  return i >= 0 && list[i] === entry ? i : -1;
}

function removeAt(list: Entry[], i: number): void {
  if (i >= 0) list.splice(i, 1);
}

function bump(counts: Map<string, number>, key: string, by: number): void {
  const n = (counts.get(key) ?? 0) + by;
  if (n === 0) counts.delete(key);
  else counts.set(key, n);
}

/**
 * The catalog of a store: the CatalogStore's own (no I/O), else one loaded from the store now
 * (the CLI acting on a store without a daemon: one full read, as before the catalog).
 */
export async function catalogOf(store: Store): Promise<CertCatalog> {
  return store instanceof CatalogStore ? store.catalog : CertCatalog.load(store);
}

/**
 * A Store whose certificate metadata is answered from a CertCatalog: saves and deletes go to the
 * store first and then to the catalog (so the catalog never names what the store lacks), and
 * listCerts() costs no I/O. Everything else is the wrapped store's. Safe to call concurrently.
 */
export class CatalogStore implements Store {
  private constructor(
    readonly inner: Store,
    readonly catalog: CertCatalog,
  ) {}

  /** Loads the catalog from `store` and wraps it; closing the wrapper closes the store. */
  static async open(store: Store): Promise<CatalogStore> {
    return new CatalogStore(store, await CertCatalog.load(store));
  }

  async saveCert(cert: StoredCert, opts?: WriteOptions): Promise<void> {
    await this.inner.saveCert(cert, opts);
    this.catalog.put(cert.meta);
  }

  async deleteCert(id: string, opts?: WriteOptions): Promise<boolean> {
    const existed = await this.inner.deleteCert(id, opts);
    this.catalog.delete(id);
    return existed;
  }

  async listCerts(): Promise<CertMeta[]> {
    return [...this.catalog.all()];
  }

  loadCert(id: string): Promise<StoredCert | undefined> {
    return this.inner.loadCert(id);
  }
  loadCerts(ids: readonly string[]): Promise<Map<string, StoredCert>> {
    return this.inner.loadCerts(ids);
  }
  putPending(p: PendingIssue, opts?: WriteOptions): Promise<void> {
    return this.inner.putPending(p, opts);
  }
  deletePending(id: string, opts?: WriteOptions): Promise<void> {
    return this.inner.deletePending(id, opts);
  }
  listPending(): Promise<PendingIssue[]> {
    return this.inner.listPending();
  }
  putDnsRecord(r: DnsRecordEntry, opts?: WriteOptions): Promise<void> {
    return this.inner.putDnsRecord(r, opts);
  }
  deleteDnsRecord(id: string, opts?: WriteOptions): Promise<void> {
    return this.inner.deleteDnsRecord(id, opts);
  }
  listDnsRecords(): Promise<DnsRecordEntry[]> {
    return this.inner.listDnsRecords();
  }
  getBlob(key: string): Promise<Buffer | undefined> {
    return this.inner.getBlob(key);
  }
  putBlob(key: string, data: Buffer | string, opts?: { secret?: boolean } & WriteOptions): Promise<void> {
    return this.inner.putBlob(key, data, opts);
  }
  lock(key: string, opts?: LockOptions): Promise<Lock> {
    return this.inner.lock(key, opts);
  }
  tryLock(key: string, opts?: Omit<LockOptions, 'waitMs'>): Promise<Lock | undefined> {
    return this.inner.tryLock(key, opts);
  }
  claimForDaemon(onLost: (err: Error) => void): Promise<void> {
    return this.inner.claimForDaemon(onLost);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
