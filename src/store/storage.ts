import type { Lock } from './locker.js';

/**
 * The storage contract (as CertMagic's Storage is to its Locker): named records of a few kinds,
 * each put, got, deleted and listed atomically (a reader sees the old record or the new one,
 * never a mix). A record is small listable metadata (a JSON object: what list() returns, so a
 * listing reads no PEM or key) plus an optional public body and an optional secret body. What a
 * record means, its validation and the sealing of secrets are the typed layer's (cert-store.ts),
 * the same for every backend: a backend stores a secret as it is given (sealed with a key id, or
 * clear when the typed layer has no key ring) and decides only where it lives.
 * Backends: fs/fs-storage.ts, postgres/pg-storage.ts. Both run test/store-contract.test.ts.
 */

/** certificates, pending issue intents, DNS-01 TXT records to remove, and blobs (local CA, ACME accounts). */
export type RecordKind = 'cert' | 'pending' | 'dns-record' | 'blob';

/** A secret body: sealed (crypto/secret-box.ts) with `keyId`, or clear when keyId is absent. */
export interface SecretBody {
  keyId?: string;
  data: Buffer;
}

export interface StorageRecord {
  meta: Record<string, unknown>;
  body?: Buffer;
  secret?: SecretBody;
}

export interface ReadRecord extends StorageRecord {
  /** Where it lives, for an error about its content: "store file /var/lib/…", "store row certd_certs x". */
  where: string;
}

export interface ListedRecord {
  name: string;
  meta: Record<string, unknown>;
  where: string;
}

export interface StorageWriteOptions {
  /**
   * Locks (of this store's locker) that must still be their holders' when the write lands: else
   * it is refused with FencedWriteError and nothing is written. PostgreSQL checks in the write's
   * own statement; the fs backend right before its rename (best-effort on one host).
   */
  fences?: readonly Lock[];
}

export interface Storage {
  /** The store in messages: "dataDir /var/lib/haproxy-certd", "the PostgreSQL store at db:5432/certd". */
  readonly where: string;
  /**
   * Names: `cert`, `pending` and `dns-record` take certificate ids (checkCertId), `blob` takes
   * store keys (checkStoreKey); anything else is refused with InvalidNameError before any I/O.
   * A record whose stored form the backend cannot parse is StoreCorruptError naming where it is.
   */
  get(kind: RecordKind, name: string): Promise<ReadRecord | undefined>;
  /** Several records at once (one statement where the backend can), by name; absent ones are missing from the map. */
  getMany(kind: RecordKind, names: readonly string[]): Promise<Map<string, ReadRecord>>;
  put(kind: RecordKind, name: string, record: StorageRecord, opts?: StorageWriteOptions): Promise<void>;
  /** Whether it existed. */
  delete(kind: RecordKind, name: string, opts?: StorageWriteOptions): Promise<boolean>;
  /** Every record's metadata, in no particular order; unparsable ones are skipped and reported to the backend's onWarning. */
  list(kind: RecordKind): Promise<ListedRecord[]>;
  close(): Promise<void>;
}
