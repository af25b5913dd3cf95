import { StoreCorruptError, CertExpiredError } from '../../core/errors.js';
import { checkIssuerId } from '../issuer.js';
import type { Lock, Store } from '../../store/store.js';
import { loadRoot, type LocalCaRoot } from './root.js';

/**
 * The part of the Store the local CA needs. `lock` is optional: when present (a shared store),
 * creating a root takes a cluster-wide lock so two nodes cannot each make their own.
 */
export type LocalCaStorage = Pick<Store, 'getBlob' | 'putBlob'> & Partial<Pick<Store, 'lock'>>;

/**
 * Every store key the local CA uses, built here only. Throws ConfigError for an issuer id that is
 * unsafe as a key segment (lowercase, as the fs store requires). Pure.
 */
export function localCaKeys(issuerId: string): { cert: string; key: string; lock: string } {
  checkIssuerId(issuerId);
  const dir = `local-ca/${issuerId}`;
  return { cert: `${dir}/root.pem`, key: `${dir}/root.key`, lock: `${dir}/init` };
}

/**
 * Reads the stored root, or undefined when there is none. The certificate is written last, so a
 * key without a certificate is the trace of an interrupted init and counts as none; a certificate
 * without its key, or one that no longer checks out, is StoreCorruptError. An expired root stays
 * CertExpiredError: the operator has to replace it.
 */
export async function readStoredRoot(
  storage: LocalCaStorage,
  issuerId: string,
  now = new Date(),
): Promise<LocalCaRoot | undefined> {
  const keys = localCaKeys(issuerId);
  const cert = await storage.getBlob(keys.cert);
  if (!cert) return undefined;
  const key = await storage.getBlob(keys.key);
  if (!key) {
    throw new StoreCorruptError(
      `local CA "${issuerId}": ${keys.cert} is stored but its key ${keys.key} is missing; ` +
        'replace the root with `haproxy-certd ca init --force`',
    );
  }
  try {
    return loadRoot(cert.toString('utf8'), key.toString('utf8'), now);
  } catch (cause) {
    if (cause instanceof CertExpiredError) throw cause;
    throw new StoreCorruptError(
      `local CA "${issuerId}": the stored root does not load (${(cause as Error).message}); ` +
        'replace it with `haproxy-certd ca init --force`',
      { cause },
    );
  }
}

/**
 * Stores a root: key first (secret, 0600), certificate last, so a reader never sees a cert without
 * its key. `fence`: the init lock (a holder that lost it writes nothing). Not safe concurrently
 * with itself for one issuer (cert and key of two roots could mix): ca.ts serializes every write.
 */
export async function writeStoredRoot(storage: LocalCaStorage, issuerId: string, root: LocalCaRoot, fence?: Lock): Promise<void> {
  const keys = localCaKeys(issuerId);
  await storage.putBlob(keys.key, root.keyPem, { secret: true, fence });
  await storage.putBlob(keys.cert, root.certPem, { fence });
}
