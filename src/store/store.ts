import type { CertBundle } from '../core/bundle.js';
import type { Lock, LockOptions } from './locker.js';

/** Where a certificate came from; decides who may change or remove it. */
export type CertOrigin = 'config' | 'api' | 'import' | 'ondemand' | 'source';

export interface CertMeta {
  /** The certificate id (see certId): primary name, `_wildcard.` for `*.`. */
  id: string;
  names: string[];
  /** Issuer id from config, or "import". */
  issuer: string;
  origin: CertOrigin;
  notBefore: string;
  notAfter: string;
  serial: string;
  fingerprint: string;
  updatedAt: string;
}

export interface StoredCert extends CertBundle {
  meta: CertMeta;
}

/** A request to have a certificate, written before issuing so a crash mid-issue is finished later. */
export interface PendingIssue {
  id: string;
  names: string[];
  issuer: string;
  origin: CertOrigin;
  requestedAt: string;
  /** A renewal (a new certificate even though a valid one is stored): redone after a crash. */
  renew?: boolean;
}

/**
 * A DNS-01 TXT record certd is writing or wrote, kept until it is removed again: written before
 * the record, deleted after its removal, so leftovers of a failed order or a crash are removed at
 * the next start or after the next order.
 */
export interface DnsRecordEntry {
  /** Stable for (issuer, fqdn, value); a file name segment. */
  id: string;
  issuer: string;
  /** Where the TXT record is (the CNAME target when delegated), without the trailing dot. */
  fqdn: string;
  value: string;
  /** The zone of the solver that wrote it. */
  zone: string;
  writtenAt: string;
}

export type { Lock, LockOptions } from './locker.js';

export interface WriteOptions {
  /**
   * A held lock the write depends on (the issue lock of the certificate): refused with
   * FencedWriteError, nothing written, once that lock is no longer this holder's.
   */
  fence?: Lock;
}

/**
 * Persistent state, typed: certificates (bundle + metadata, saved as one unit), pending issue
 * requests, opaque blobs (local CA, ACME accounts) and cluster-wide locks with a lease and a
 * fencing token. Implemented once (cert-store.ts) over a Storage and a Locker per backend.
 * All methods are safe to call concurrently; a save is atomic (readers see old or new, never a mix).
 * Once claimForDaemon holds the claim, every write is also fenced with it.
 */
export interface Store {
  loadCert(id: string): Promise<StoredCert | undefined>;
  /** Several at once, by id (absent ones are missing from the map): one statement on postgres. */
  loadCerts(ids: readonly string[]): Promise<Map<string, StoredCert>>;
  saveCert(cert: StoredCert, opts?: WriteOptions): Promise<void>;
  deleteCert(id: string, opts?: WriteOptions): Promise<boolean>;
  listCerts(): Promise<CertMeta[]>;

  putPending(p: PendingIssue, opts?: WriteOptions): Promise<void>;
  deletePending(id: string, opts?: WriteOptions): Promise<void>;
  listPending(): Promise<PendingIssue[]>;

  /** Records a DNS-01 TXT record about to be written (see DnsRecordEntry). */
  putDnsRecord(r: DnsRecordEntry, opts?: WriteOptions): Promise<void>;
  /** Forgets one once removed from DNS; a missing id is fine. */
  deleteDnsRecord(id: string, opts?: WriteOptions): Promise<void>;
  listDnsRecords(): Promise<DnsRecordEntry[]>;

  getBlob(key: string): Promise<Buffer | undefined>;
  /** `secret` blobs are sealed when the store has a key ring, else written 0600 (fs). */
  putBlob(key: string, data: Buffer | string, opts?: { secret?: boolean } & WriteOptions): Promise<void>;

  /** Waits for the lock (bounded by waitMs), or throws StoreLockedError. */
  lock(key: string, opts?: LockOptions): Promise<Lock>;
  /** Takes the lock if free (or stale), else returns undefined at once. */
  tryLock(key: string, opts?: Omit<LockOptions, 'waitMs'>): Promise<Lock | undefined>;

  /**
   * Claims the store for this daemon process until close(): a second daemon on the same store is
   * refused (StoreLockedError naming the holder). `onLost` is called if the claim is lost later
   * (its lease ran out and another process took it): the daemon must stop writing at once.
   */
  claimForDaemon(onLost: (err: Error) => void): Promise<void>;

  close(): Promise<void>;
}
