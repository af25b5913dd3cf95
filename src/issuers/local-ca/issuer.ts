import { ConfigError } from '../../core/errors.js';
import { KEY_TYPES } from '../../crypto/keys.js';
import type { IssuedBundle, IssueRequest, Issuer, KeyType } from '../issuer.js';
import { loadOrCreateLocalCa, type LocalCa } from './ca.js';
import { localCaKeys, type LocalCaStorage } from './storage.js';

export interface LocalCaIssuerOptions {
  /** The issuer's config id; also names its root in the store (local-ca/<id>/…). */
  id: string;
  /** Default for requests that do not name one (default ecdsa-p256). */
  keyType?: KeyType;
  /** Leaf lifetime (default 30 days); clipped to the root's own end. */
  validityMs?: number;
}

const DAY_MS = 86_400_000;

/**
 * Issues leaves from a local CA whose root is loaded from the store, or created there on first
 * use. Safe to call concurrently: the root is loaded once (single-flight), leaves in parallel.
 */
export class LocalCaIssuer implements Issuer {
  readonly id: string;
  readonly signsLocally = true;
  private readonly keyType: KeyType;
  private readonly validityMs: number;
  private loading: Promise<LocalCa> | undefined;

  /** Throws ConfigError for an unsafe id, an unknown key type or a non-positive validity. */
  constructor(
    private readonly storage: LocalCaStorage,
    options: LocalCaIssuerOptions,
  ) {
    localCaKeys(options.id); // validates the id before any store access
    this.id = options.id;
    this.keyType = options.keyType ?? 'ecdsa-p256';
    if (!KEY_TYPES.includes(this.keyType)) {
      throw new ConfigError(
        `issuer "${options.id}": keyType ${JSON.stringify(this.keyType)} is unknown; use ${KEY_TYPES.join(' or ')}`,
      );
    }
    this.validityMs = options.validityMs ?? 30 * DAY_MS;
    if (!Number.isFinite(this.validityMs) || this.validityMs < 60_000) {
      throw new ConfigError(`issuer "${options.id}": validity must be at least one minute, e.g. 30d`);
    }
  }

  /** The CA, loaded or created on first call; a failed load is retried on the next call. */
  ca(): Promise<LocalCa> {
    if (!this.loading) {
      const loading = loadOrCreateLocalCa(this.storage, this.id);
      this.loading = loading;
      loading.catch(() => {
        if (this.loading === loading) this.loading = undefined;
      });
    }
    return this.loading;
  }

  /** Issues a leaf for req.names (already validated; the first is the CN). certPem is the leaf alone. */
  async issue(req: IssueRequest): Promise<IssuedBundle> {
    req.signal?.throwIfAborted();
    const ca = await this.ca();
    req.signal?.throwIfAborted();
    return ca.issueLeaf({ names: req.names, keyType: req.keyType ?? this.keyType, validityMs: this.validityMs });
  }
}
