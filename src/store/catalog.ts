import type { CertMeta, DnsRecordEntry, Lock, LockOptions, PendingIssue, Store, StoredCert } from './store.js';

/** One change to the catalog: `meta` is the new metadata, absent when the certificate was removed. */
export interface CatalogChange {
  id: string;
  meta?: CertMeta;
}

/**
 * Every stored certificate's metadata in memory, loaded once from the store and kept current by
 * the CatalogStore that writes through it: listing, counting, finding a name and planning
 * renewals read it instead of reading N records from the store. Holds metadata only (a few
 * hundred bytes each), never keys or PEMs.
 * Changes another process makes to a shared store reach it only through refresh(id).
 * Not for concurrent mutation (its writers are the CatalogStore's awaited saves); reads are sync.
 */
export class CertCatalog {
  readonly #byId = new Map<string, CertMeta>();
  /** Name → ids having it (names are unique per certificate, not across certificates). */
  readonly #byName = new Map<string, Set<string>>();
  readonly #listeners = new Set<(change: CatalogChange) => void>();
  /** All metadata sorted by id; rebuilt on the first read after a change. */
  #sorted?: CertMeta[];

  constructor(metas: Iterable<CertMeta> = []) {
    for (const meta of metas) this.#add(meta);
  }

  /** Loads the catalog from every certificate's metadata in the store. */
  static async load(store: Pick<Store, 'listCerts'>): Promise<CertCatalog> {
    return new CertCatalog(await store.listCerts());
  }

  get size(): number {
    return this.#byId.size;
  }

  get(id: string): CertMeta | undefined {
    return this.#byId.get(id);
  }

  /** The certificate with this id, else the first (by id) that has it among its names. */
  find(idOrName: string): CertMeta | undefined {
    const direct = this.#byId.get(idOrName);
    if (direct) return direct;
    const ids = this.#byName.get(idOrName);
    if (!ids) return undefined;
    return [...ids].sort(compare).map((id) => this.#byId.get(id)!)[0];
  }

  /** Every certificate's metadata, sorted by id. The array is shared: do not mutate it. */
  all(): readonly CertMeta[] {
    this.#sorted ??= [...this.#byId.values()].sort((a, b) => compare(a.id, b.id));
    return this.#sorted;
  }

  /** How many match (all when no predicate). O(N) with a predicate. */
  count(match?: (meta: CertMeta) => boolean): number {
    if (!match) return this.#byId.size;
    let n = 0;
    for (const meta of this.#byId.values()) if (match(meta)) n++;
    return n;
  }

  /** Called after every change, synchronously; returns the unsubscribe function. */
  onChange(listener: (change: CatalogChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Records a saved certificate's metadata. */
  put(meta: CertMeta): void {
    this.#remove(meta.id);
    this.#add(meta);
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

  #add(meta: CertMeta): void {
    this.#byId.set(meta.id, meta);
    for (const name of meta.names) {
      let ids = this.#byName.get(name);
      if (!ids) this.#byName.set(name, (ids = new Set()));
      ids.add(meta.id);
    }
    this.#sorted = undefined;
  }

  #remove(id: string): boolean {
    const old = this.#byId.get(id);
    if (!old) return false;
    this.#byId.delete(id);
    for (const name of old.names) {
      const ids = this.#byName.get(name);
      ids?.delete(id);
      if (ids?.size === 0) this.#byName.delete(name);
    }
    this.#sorted = undefined;
    return true;
  }

  #changed(change: CatalogChange): void {
    for (const listener of this.#listeners) listener(change);
  }
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

  async saveCert(cert: StoredCert): Promise<void> {
    await this.inner.saveCert(cert);
    this.catalog.put(cert.meta);
  }

  async deleteCert(id: string): Promise<boolean> {
    const existed = await this.inner.deleteCert(id);
    this.catalog.delete(id);
    return existed;
  }

  async listCerts(): Promise<CertMeta[]> {
    return [...this.catalog.all()];
  }

  loadCert(id: string): Promise<StoredCert | undefined> {
    return this.inner.loadCert(id);
  }
  putPending(p: PendingIssue): Promise<void> {
    return this.inner.putPending(p);
  }
  deletePending(id: string): Promise<void> {
    return this.inner.deletePending(id);
  }
  listPending(): Promise<PendingIssue[]> {
    return this.inner.listPending();
  }
  putDnsRecord(r: DnsRecordEntry): Promise<void> {
    return this.inner.putDnsRecord(r);
  }
  deleteDnsRecord(id: string): Promise<void> {
    return this.inner.deleteDnsRecord(id);
  }
  listDnsRecords(): Promise<DnsRecordEntry[]> {
    return this.inner.listDnsRecords();
  }
  getBlob(key: string): Promise<Buffer | undefined> {
    return this.inner.getBlob(key);
  }
  putBlob(key: string, data: Buffer | string, opts?: { secret?: boolean }): Promise<void> {
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
