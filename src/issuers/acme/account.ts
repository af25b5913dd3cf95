import { createPrivateKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { StoreCorruptError } from '../../core/errors.js';
import { checkIssuerId } from '../issuer.js';
import { generateKeyPair } from '../../crypto/keys.js';
import type { Lock, Store } from '../../store/store.js';
import { publicJwk } from './jws.js';

/** The part of the Store the ACME issuer needs. */
export type AcmeStorage = Pick<Store, 'getBlob' | 'putBlob' | 'lock'>;

/** A registered account: its key and URL, for one directory. */
export interface AcmeAccountRecord {
  key: KeyObject;
  url: string;
  directory: string;
}

/** What `acme/<issuerId>/account.json` holds (0600: the private key is in it). */
interface StoredAccount {
  version: 1;
  directory: string;
  url: string;
  /** The private account key as a JWK (EC P-256). */
  key: JsonWebKey;
  createdAt: string;
}

/**
 * Every store key of an ACME issuer, built here only. Throws ConfigError for an issuer id unsafe
 * as a key segment. Pure.
 */
export function acmeKeys(issuerId: string): { account: string; accountLock: string } {
  checkIssuerId(issuerId);
  return { account: `acme/${issuerId}/account.json`, accountLock: `acme/${issuerId}/account` };
}

/** Registers `key` with the CA (newAccount) and returns the account URL. */
export type RegisterAccount = (key: KeyObject) => Promise<string>;

export interface LoadAccountOptions {
  directory: string;
  register: RegisterAccount;
  /**
   * An account URL the CA no longer knows (accountDoesNotExist): if the stored record still has
   * it, the same key is registered again instead of being returned.
   */
  staleUrl?: string;
  signal?: AbortSignal;
}

/**
 * The issuer's account: read from the store, or registered and stored once. Lock, check again,
 * then work: registration runs under `acme/<id>/account`, and a record another process stored
 * meanwhile is used as is. Nothing is stored unless registration succeeds. A record for another
 * directory URL is replaced (an account belongs to one CA). Safe to call concurrently, also
 * across processes sharing the store.
 */
export async function loadOrCreateAccount(
  storage: AcmeStorage,
  issuerId: string,
  opts: LoadAccountOptions,
): Promise<AcmeAccountRecord> {
  const keys = acmeKeys(issuerId);
  const usable = (r: AcmeAccountRecord | undefined): boolean =>
    r !== undefined && r.directory === opts.directory && r.url !== opts.staleUrl;

  const first = await readAccount(storage, keys.account);
  if (first && usable(first)) return first;
  opts.signal?.throwIfAborted();
  const lock = await storage.lock(keys.accountLock, { signal: opts.signal });
  try {
    const current = await readAccount(storage, keys.account);
    if (current && usable(current)) return current;
    // A stale URL keeps its key: the CA may still know the key under a new URL (onlyReturnExisting).
    const key =
      current && current.directory === opts.directory ? current.key : (await generateKeyPair('ecdsa-p256')).privateKey;
    const url = await opts.register(key);
    const record: AcmeAccountRecord = { key, url, directory: opts.directory };
    // Fenced: a holder whose lease ran out while registering writes nothing (the next holder's account stands).
    await writeAccount(storage, keys.account, record, lock);
    return record;
  } finally {
    await lock.release();
  }
}

async function readAccount(storage: AcmeStorage, key: string): Promise<AcmeAccountRecord | undefined> {
  const blob = await storage.getBlob(key);
  if (!blob) return undefined;
  try {
    const doc = JSON.parse(blob.toString('utf8')) as StoredAccount;
    if (doc.version !== 1 || typeof doc.url !== 'string' || typeof doc.directory !== 'string') {
      throw new Error('unexpected fields');
    }
    const privateKey = createPrivateKey({ key: doc.key, format: 'jwk' });
    publicJwk(privateKey); // refuses anything but P-256
    return { key: privateKey, url: doc.url, directory: doc.directory };
  } catch (cause) {
    throw new StoreCorruptError(
      `${key} does not load (${(cause as Error).message}); remove it to register a new ACME account`,
      { cause },
    );
  }
}

async function writeAccount(storage: AcmeStorage, key: string, record: AcmeAccountRecord, fence: Lock): Promise<void> {
  const doc: StoredAccount = {
    version: 1,
    directory: record.directory,
    url: record.url,
    key: record.key.export({ format: 'jwk' }),
    createdAt: new Date().toISOString(),
  };
  await storage.putBlob(key, `${JSON.stringify(doc, null, 2)}\n`, { secret: true, fence });
}
