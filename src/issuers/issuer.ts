import type { CertBundle } from '../core/bundle.js';

export type KeyType = 'ecdsa-p256' | 'rsa-2048';

export interface IssueRequest {
  /** Validated, normalized names; the first is the primary. */
  names: string[];
  keyType?: KeyType;
  signal?: AbortSignal;
}

/**
 * Something that turns names into a certificate + key. Implementations say whether they are safe
 * to call concurrently; the daemon serializes per name anyway (single-flight + store lock).
 */
export interface Issuer {
  /** The issuer's config id (e.g. "internal", "le"). */
  readonly id: string;
  issue(req: IssueRequest): Promise<CertBundle>;
}
