import { createHash, X509Certificate } from 'node:crypto';
import { KeyedQueue } from '../../core/async.js';
import { UsageError, CertExpiredError, InvalidNameError } from '../../core/errors.js';
import { MAX_DN_VALUE } from '../../crypto/dn.js';
import { exportPrivateKeyPem, takeLeafKeyPair } from '../../crypto/keys.js';
import { buildCertificate, randomSerial } from '../../crypto/x509.js';
import type { Lock } from '../../store/store.js';
import type { IssuedBundle, KeyType } from '../issuer.js';
import { LocalCaExistsError } from './errors.js';
import { signIntermediate, type IntermediateBundle, type IntermediateRequest } from './intermediate.js';
import { CLOCK_SKEW_MS, createRoot, loadRoot, type LocalCaRoot } from './root.js';
import { localCaKeys, readStoredRoot, writeStoredRoot, type LocalCaStorage } from './storage.js';

export interface LeafRequest {
  /** Validated names (DNS or IP); the first becomes the CN. */
  names: readonly string[];
  keyType?: KeyType;
  validityMs: number;
  now?: Date;
}

/** A local certificate authority: one root that signs leaves directly. */
export class LocalCa {
  /** The root's subject as node:crypto prints it: every leaf's issuer DN. */
  private readonly issuerDn: string;

  private constructor(private readonly root: LocalCaRoot) {
    this.issuerDn = new X509Certificate(root.certPem).subject;
  }

  /** A CA around an already checked root (see loadRoot / createRoot). */
  static fromRoot(root: LocalCaRoot): LocalCa {
    return new LocalCa(root);
  }

  /** The root certificate PEM: what clients add to their trust store. */
  get rootPem(): string {
    return this.root.certPem;
  }

  /** SHA-256 fingerprint of the root, for the operator to compare. */
  get fingerprint(): string {
    return this.root.fingerprint;
  }

  /** A name-constrained intermediate for HAProxy's forge (see intermediate.ts). Safe to call concurrently. */
  issueIntermediate(req: IntermediateRequest): Promise<IntermediateBundle> {
    return signIntermediate(this.root, req);
  }

  /**
   * Issues a leaf for the names with a fresh key. notBefore is a minute back for clients whose
   * clock lags; notAfter never passes the root's. certPem holds the leaf only: clients trust
   * the root itself, so there is no intermediate to send. Safe to call concurrently.
   */
  async issueLeaf(req: LeafRequest): Promise<IssuedBundle> {
    const names = [...new Set(req.names)];
    if (names.length === 0) throw new InvalidNameError('no names to issue for: give at least one DNS name or IP');
    const now = req.now ?? new Date();
    if (this.root.notAfter <= now) {
      throw new CertExpiredError(
        `the local CA root expired at ${this.root.notAfter.toISOString()}: replace it with \`haproxy-certd ca init --force\``,
      );
    }
    const { privateKey, publicKey } = await takeLeafKeyPair(req.keyType ?? 'ecdsa-p256');
    // Whole seconds: what the certificate's UTCTime/GeneralizedTime holds.
    const notBefore = wholeSeconds(now.getTime() - CLOCK_SKEW_MS);
    const notAfter = wholeSeconds(Math.min(now.getTime() + req.validityMs, this.root.notAfter.getTime()));
    const serial = randomSerial();
    const primary = names[0]!;
    const leaf = buildCertificate({
      // CN is capped at 64 characters; longer names live in the SAN alone.
      subject: primary.length <= MAX_DN_VALUE ? { commonName: primary } : {},
      subjectAltNames: names,
      publicKey,
      issuer: this.root.issuer,
      notBefore,
      notAfter,
      serial,
    });
    return {
      certPem: leaf.pem,
      keyPem: exportPrivateKeyPem(privateKey),
      facts: {
        names,
        notBefore: notBefore.toISOString(),
        notAfter: notAfter.toISOString(),
        serial: serial.toString('hex'),
        fingerprint: createHash('sha256').update(leaf.der).digest('hex'),
        issuerDn: this.issuerDn,
      },
    };
  }
}

/**
 * Loads the issuer's root from storage, creating and storing one when there is none. Calls for the
 * same storage and issuer run one at a time, so concurrent first calls create a single root; with
 * a lockable store the creation also holds a cluster-wide lock and re-reads under it.
 * Safe to call concurrently.
 */
export function loadOrCreateLocalCa(storage: LocalCaStorage, issuerId: string): Promise<LocalCa> {
  return exclusive(storage, issuerId, async () => {
    const stored = await readStoredRoot(storage, issuerId);
    if (stored) return LocalCa.fromRoot(stored);
    return withStoreLock(storage, issuerId, async (lock) => {
      const again = await readStoredRoot(storage, issuerId);
      if (again) return LocalCa.fromRoot(again);
      const root = await createRoot();
      await writeStoredRoot(storage, issuerId, root, lock);
      return LocalCa.fromRoot(root);
    });
  });
}

export interface InitLocalCaOptions {
  /** A root to use instead of generating one; needs keyPem too. */
  certPem?: string;
  keyPem?: string;
  /** Replace a stored root. Leaves it signed stop validating once clients drop the old root. */
  force?: boolean;
}

/**
 * `ca init`: stores a supplied root (checked) or a new one. Refuses with LocalCaExistsError when a
 * root is already stored, unless force. A daemon already running keeps the root it loaded until
 * restarted. Safe to call concurrently (serialized with loadOrCreateLocalCa).
 */
export async function initLocalCa(storage: LocalCaStorage, issuerId: string, opts: InitLocalCaOptions = {}): Promise<LocalCa> {
  if ((opts.certPem === undefined) !== (opts.keyPem === undefined)) {
    throw new UsageError('give both the CA certificate and its key, or neither to generate a new root');
  }
  const keys = localCaKeys(issuerId);
  // Checked before queueing so a bad cert/key fails fast and never touches the store.
  const supplied = opts.certPem !== undefined ? loadRoot(opts.certPem, opts.keyPem!) : undefined;
  return exclusive(storage, issuerId, () =>
    withStoreLock(storage, issuerId, async (lock) => {
      if (!opts.force && (await storage.getBlob(keys.cert))) {
        throw new LocalCaExistsError(
          `a local CA root is already stored for issuer "${issuerId}"; ` +
            'pass --force to replace it (leaves it signed will stop validating)',
        );
      }
      const root = supplied ?? (await createRoot());
      await writeStoredRoot(storage, issuerId, root, lock);
      return LocalCa.fromRoot(root);
    }),
  );
}

// Root operations run one at a time per storage object and issuer id.
const queues = new WeakMap<object, KeyedQueue<string>>();

function exclusive<T>(storage: LocalCaStorage, issuerId: string, work: () => Promise<T>): Promise<T> {
  let byId = queues.get(storage);
  if (!byId) queues.set(storage, (byId = new KeyedQueue()));
  return byId.run(issuerId, work);
}

/** Under the cluster-wide init lock when the store has one; the writes are fenced with it (a holder whose lease ran out writes nothing). */
async function withStoreLock<T>(storage: LocalCaStorage, issuerId: string, work: (lock?: Lock) => Promise<T>): Promise<T> {
  if (!storage.lock) return work();
  const lock = await storage.lock(localCaKeys(issuerId).lock, { waitMs: 60_000 });
  try {
    return await work(lock);
  } finally {
    await lock.release();
  }
}

function wholeSeconds(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}
