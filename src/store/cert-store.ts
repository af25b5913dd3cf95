import { sleep } from '../core/async.js';
import { categoryOf, StoreCorruptError, StoreLockedError } from '../core/errors.js';
import type { KeyRing } from '../crypto/secret-box.js';
import { checkCertId, checkStoreKey } from './fs/keys.js';
import { describeOwner, type Lock, type Locker, type LockHolder, type LockOptions } from './locker.js';
import type { ReadRecord, RecordKind, SecretBody, Storage } from './storage.js';
import type { CertMeta, DnsRecordEntry, PendingIssue, Store, StoredCert, WriteOptions } from './store.js';

export interface CertStoreOptions {
  /** Seals private keys and secret blobs (store.keyFile). Without one they are stored clear (fs: 0600). */
  keys?: KeyRing;
  /** Told about records a listing skips (unreadable, wrong shape). Default: process.emitWarning. */
  onWarning?: (err: Error) => void;
  /** The daemon claim's lease (default 30 s). */
  daemonLeaseMs?: number;
  /** Added to the refusal of a second daemon: what to do about it. */
  claimHint?: string;
}

/** Who holds the daemon claim, as a standby reports it. */
export interface ClaimHolder {
  host: string;
  pid: number;
  /** When its lease runs out unless refreshed. */
  expiresAt: Date;
}

const DAEMON_LOCK = 'daemon';
const DEFAULT_LEASE_MS = 30_000;
const CERT_META_STRINGS = ['id', 'issuer', 'origin', 'notBefore', 'notAfter', 'serial', 'fingerprint', 'updatedAt'] as const;

/** A kind of small JSON record listed oldest first: pending issue requests, DNS-01 records to remove. */
interface RecordShape<T> {
  kind: RecordKind;
  /** Names it in errors: "pending request x". */
  what: string;
  strings: readonly string[];
  lists?: readonly string[];
  orderKey(r: T): string;
}

const PENDING: RecordShape<PendingIssue> = {
  kind: 'pending',
  what: 'pending request',
  strings: ['id', 'issuer', 'origin', 'requestedAt'],
  lists: ['names'],
  orderKey: (p) => p.requestedAt,
};

const DNS_RECORDS: RecordShape<DnsRecordEntry> = {
  kind: 'dns-record',
  what: 'DNS record',
  strings: ['id', 'issuer', 'fqdn', 'value', 'zone', 'writtenAt'],
  orderKey: (r) => r.writtenAt,
};

/**
 * The typed store, the same for every backend: Store over a Storage (records) and a Locker
 * (leases with fencing tokens). Here alone: certificate (de)serialisation and validation (on save
 * and on load), the sealing of private keys and secret blobs (so "encrypted at rest" is decided
 * once), the sort orders, and the daemon claim — which, once held, fences every write.
 */
export class CertStore implements Store {
  readonly #keys: KeyRing | undefined;
  readonly #onWarning: (err: Error) => void;
  readonly #daemonLeaseMs: number;
  readonly #claimHint: string;
  #claim: Lock | undefined;

  constructor(
    protected readonly storage: Storage,
    protected readonly locker: Locker,
    o: CertStoreOptions = {},
  ) {
    this.#keys = o.keys;
    this.#onWarning = o.onWarning ?? ((err) => process.emitWarning(err));
    this.#daemonLeaseMs = o.daemonLeaseMs ?? DEFAULT_LEASE_MS;
    this.#claimHint = o.claimHint ?? 'stop it first';
  }

  async loadCert(id: string): Promise<StoredCert | undefined> {
    const name = checkCertId(id);
    const r = await this.storage.get('cert', name);
    return r && this.#certOf(name, r);
  }

  async loadCerts(ids: readonly string[]): Promise<Map<string, StoredCert>> {
    const names = ids.map((id) => checkCertId(id));
    const found = new Map<string, StoredCert>();
    for (const [name, r] of await this.storage.getMany('cert', names)) found.set(name, this.#certOf(name, r));
    return found;
  }

  async saveCert(cert: StoredCert, opts?: WriteOptions): Promise<void> {
    const id = checkCertId(cert.meta?.id);
    // Only the known fields: a caller's richer object (parse facts…) must not reach the store.
    const meta = cert.meta && pickMeta(cert.meta);
    const problem = certProblem(meta, id) ?? (typeof cert.certPem !== 'string' || typeof cert.keyPem !== 'string' ? 'needs string certPem and keyPem' : undefined);
    if (problem) throw new StoreCorruptError(`refusing to save certificate ${id}: it ${problem}`);
    await this.storage.put('cert', id, { meta, body: Buffer.from(cert.certPem), secret: this.#seal(cert.keyPem, `cert:${id}`) }, this.#write(opts));
  }

  async deleteCert(id: string, opts?: WriteOptions): Promise<boolean> {
    return await this.storage.delete('cert', checkCertId(id), this.#write(opts));
  }

  /** Metadata of every readable certificate, sorted by id; bad records are skipped and reported to onWarning. */
  async listCerts(): Promise<CertMeta[]> {
    const out: CertMeta[] = [];
    for (const r of await this.storage.list('cert')) {
      const problem = certProblem(r.meta, r.name);
      if (problem) this.#onWarning(corrupt(r.where, problem));
      else out.push(r.meta as unknown as CertMeta);
    }
    return out.sort((a, b) => compare(a.id, b.id));
  }

  async putPending(p: PendingIssue, opts?: WriteOptions): Promise<void> {
    return await this.#putRecord(PENDING, p, opts);
  }

  async deletePending(id: string, opts?: WriteOptions): Promise<void> {
    await this.storage.delete('pending', checkCertId(id), this.#write(opts));
  }

  /** Pending requests, oldest first; bad records are skipped and reported to onWarning. */
  async listPending(): Promise<PendingIssue[]> {
    return await this.#listRecords(PENDING);
  }

  async putDnsRecord(r: DnsRecordEntry, opts?: WriteOptions): Promise<void> {
    return await this.#putRecord(DNS_RECORDS, r, opts);
  }

  async deleteDnsRecord(id: string, opts?: WriteOptions): Promise<void> {
    await this.storage.delete('dns-record', checkCertId(id), this.#write(opts));
  }

  /** DNS records to remove, oldest first; bad records are skipped and reported to onWarning. */
  async listDnsRecords(): Promise<DnsRecordEntry[]> {
    return await this.#listRecords(DNS_RECORDS);
  }

  async getBlob(key: string): Promise<Buffer | undefined> {
    const k = checkStoreKey(key, 'blob key');
    const r = await this.storage.get('blob', k);
    if (!r) return undefined;
    if (r.secret) return this.#open(r.secret, `blob:${k}`);
    if (!r.body) throw corrupt(r.where, 'holds no data');
    return r.body;
  }

  async putBlob(key: string, data: Buffer | string, opts: { secret?: boolean } & WriteOptions = {}): Promise<void> {
    const k = checkStoreKey(key, 'blob key');
    const record = opts.secret ? { meta: {}, secret: this.#seal(data, `blob:${k}`) } : { meta: {}, body: Buffer.from(data) };
    await this.storage.put('blob', k, record, this.#write(opts));
  }

  async lock(key: string, opts?: LockOptions): Promise<Lock> {
    return await this.locker.lock(key, opts);
  }

  async tryLock(key: string, opts?: Omit<LockOptions, 'waitMs'>): Promise<Lock | undefined> {
    return await this.locker.tryLock(key, opts);
  }

  /** Holds the `daemon` lock until close() (see Store.claimForDaemon); from then on it fences every write. */
  async claimForDaemon(onLost: (err: Error) => void): Promise<void> {
    const got = await this.locker.tryLock(DAEMON_LOCK, { leaseMs: this.#daemonLeaseMs, onLost });
    if (!got) {
      const holder = await this.locker.holder(DAEMON_LOCK);
      const who = holder ? `${describeOwner(holder.owner)}, lease until ${holder.expiresAt.toISOString()}` : 'a holder that cannot be named: released just now, or its lock unreadable';
      throw new StoreLockedError(`${this.storage.where} is in use by another haproxy-certd daemon (${who}): ${this.#claimHint}`);
    }
    await this.#claimed(got);
  }

  /**
   * Active/standby: takes the daemon claim, waiting as long as another daemon holds it. Polls at
   * a fifth of the lease (at most every second), so a holder that died is replaced within its
   * lease and one poll. `onStandby` is told each time the holder changes (also at first), and
   * a failed poll (the store away) is a warning, not the end: the standby goes on waiting.
   * Resolves true when it had to wait (a takeover), false when the claim was free.
   */
  async claimWhenFree(onLost: (err: Error) => void, o: { onStandby: (holder: ClaimHolder) => void; signal?: AbortSignal }): Promise<boolean> {
    const pollMs = Math.min(1_000, this.#daemonLeaseMs / 5);
    let told = '';
    for (;;) {
      o.signal?.throwIfAborted();
      try {
        const got = await this.locker.tryLock(DAEMON_LOCK, { leaseMs: this.#daemonLeaseMs, onLost });
        if (got) {
          await this.#claimed(got);
          return told !== '';
        }
        const holder = await this.claimHolder();
        const who = holder ? `${holder.host}:${holder.pid}` : '';
        if (holder && who !== told) o.onStandby(holder);
        told = who;
      } catch (err) {
        if (categoryOf(err) !== 'unavailable') throw err;
        this.#onWarning(err as Error);
      }
      await sleep(pollMs, o.signal);
    }
  }

  /** The daemon holding the claim now, if any (an expired lease counts as none). */
  async claimHolder(): Promise<ClaimHolder | undefined> {
    const h: LockHolder | undefined = await this.locker.holder(DAEMON_LOCK);
    if (!h) return undefined;
    const [host = '?', pid = '0'] = h.owner.split(':');
    return { host, pid: Number(pid), expiresAt: h.expiresAt };
  }

  /** Releases the locks this store holds, then closes the storage. Safe to call twice. */
  async close(): Promise<void> {
    await this.locker.close();
    await this.storage.close();
  }

  /** Called once the daemon claim is held (the fs store then sweeps crash leftovers). */
  protected async afterClaim(): Promise<void> {}

  async #claimed(lock: Lock): Promise<void> {
    this.#claim = lock;
    await this.afterClaim();
  }

  #write(opts: WriteOptions | undefined): { fences?: Lock[] } {
    const fences = [opts?.fence, this.#claim].filter((l): l is Lock => l !== undefined);
    return fences.length > 0 ? { fences } : {};
  }

  #seal(plain: Buffer | string, context: string): SecretBody {
    return this.#keys ? this.#keys.seal(plain, context) : { data: Buffer.from(plain) };
  }

  /** A read certificate record, checked and its key opened. */
  #certOf(name: string, r: ReadRecord): StoredCert {
    const problem = certProblem(r.meta, name) ?? (r.body === undefined || r.secret === undefined ? 'lacks its certificate or key' : undefined);
    if (problem) throw corrupt(r.where, problem);
    return { certPem: r.body!.toString('utf8'), keyPem: this.#open(r.secret!, `cert:${name}`).toString('utf8'), meta: r.meta as unknown as CertMeta };
  }

  #open(secret: SecretBody, context: string): Buffer {
    if (secret.keyId === undefined) return secret.data;
    if (!this.#keys) throw new StoreCorruptError(`the secret ${context} is sealed (key ${secret.keyId}) but this store has no key file to open it`);
    return this.#keys.open({ keyId: secret.keyId, data: secret.data }, context);
  }

  async #putRecord<T extends { id: string }>(shape: RecordShape<T>, record: T, opts?: WriteOptions): Promise<void> {
    const id = checkCertId(record?.id);
    const problem = recordProblem(shape, record as unknown as Record<string, unknown>, id);
    if (problem) throw new StoreCorruptError(`refusing to save ${shape.what} ${id}: it ${problem}`);
    await this.storage.put(shape.kind, id, { meta: record as unknown as Record<string, unknown> }, this.#write(opts));
  }

  async #listRecords<T extends { id: string }>(shape: RecordShape<T>): Promise<T[]> {
    const out: T[] = [];
    for (const r of await this.storage.list(shape.kind)) {
      const problem = recordProblem(shape, r.meta, r.name);
      if (problem) this.#onWarning(corrupt(r.where, problem));
      else out.push(r.meta as unknown as T);
    }
    return out.sort((a, b) => compare(shape.orderKey(a), shape.orderKey(b)) || compare(a.id, b.id));
  }
}

function pickMeta(m: CertMeta): Record<string, unknown> {
  const { id, names, issuer, origin, notBefore, notAfter, serial, fingerprint, updatedAt } = m;
  return { id, names, issuer, origin, notBefore, notAfter, serial, fingerprint, updatedAt };
}

/** What is wrong with a certificate's metadata, checked on save and on load. */
function certProblem(meta: unknown, id: string): string | undefined {
  const ok = isObject(meta) && CERT_META_STRINGS.every((f) => typeof meta[f] === 'string') && isStringArray(meta.names);
  if (!ok) return 'is not a certificate (meta with string fields and a names list)';
  if (meta.id !== id) return `holds certificate ${JSON.stringify(meta.id)}, not ${JSON.stringify(id)}`;
  return undefined;
}

function recordProblem(shape: RecordShape<unknown>, r: Record<string, unknown>, id: string): string | undefined {
  const lists = shape.lists ?? [];
  const ok = isObject(r) && shape.strings.every((f) => typeof r[f] === 'string') && lists.every((f) => isStringArray(r[f]));
  if (!ok) return `is not a ${shape.what} (string ${shape.strings.join(', ')}${lists.map((f) => ` and a ${f} list`).join('')})`;
  if (r.id !== id) return `holds ${shape.what} ${JSON.stringify(r.id)}, not ${JSON.stringify(id)}`;
  return undefined;
}

export function corrupt(where: string, what: string, cause?: unknown): StoreCorruptError {
  return new StoreCorruptError(`${where} ${what}: restore it from a backup, or delete it and issue or import again`, { cause });
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}
