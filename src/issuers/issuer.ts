import type { CertBundle, CertFacts } from '../core/bundle.js';
import { ConfigError } from '../core/errors.js';

export type KeyType = 'ecdsa-p256' | 'rsa-2048';

/**
 * The one rule for issuer ids (the config schema checks it too): they become store key segments,
 * file names and metrics labels, so lowercase letters, digits, "-" and "_".
 */
export const ISSUER_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const ISSUER_ID_RULE = 'an issuer id must be 1-63 lowercase letters, digits, "-" or "_", starting with a letter or digit';

/** Returns `id` when it follows ISSUER_ID_PATTERN, else throws ConfigError. Pure. */
export function checkIssuerId(id: string): string {
  if (!ISSUER_ID_PATTERN.test(id)) throw new ConfigError(`issuer id ${JSON.stringify(id)}: ${ISSUER_ID_RULE}`);
  return id;
}

export interface IssueRequest {
  /** Validated, normalized names; the first is the primary. */
  names: string[];
  keyType?: KeyType;
  signal?: AbortSignal;
  /** PEM of the certificate this one renews (ACME sends it as RFC 9773 `replaces`). */
  replaces?: string;
}

/**
 * What an issuer returns. `facts` only from an issuer that built the certificate itself around a
 * key it just made: they are what parsing would find, so the service need not parse it again
 * (that costs ~1.4 ms, on the path of a waiting on-demand handshake).
 */
export interface IssuedBundle extends CertBundle {
  facts?: CertFacts;
}

/** A CA's renewal window for one certificate (RFC 9773 ARI). */
export interface RenewalWindow {
  suggestedWindow: { start: Date; end: Date };
  /** When to ask again. */
  retryAfterMs: number;
}

/**
 * Something that turns names into a certificate + key. Implementations say whether they are safe
 * to call concurrently; the daemon serializes per name anyway (single-flight + store lock).
 */
export interface Issuer {
  /** The issuer's config id (e.g. "internal", "le"). */
  readonly id: string;
  /**
   * True when issue() has no effect outside this process (a local CA: nothing is ordered, counted
   * or published). On-demand may then sign before the ask URL has answered, and drop the result.
   */
  readonly signsLocally?: boolean;
  issue(req: IssueRequest): Promise<IssuedBundle>;
  /** Optional ability: the CA's renewal window for a certificate it issued (undefined: none offered). */
  renewalInfo?(certPem: string, signal?: AbortSignal): Promise<RenewalWindow | undefined>;
  /** Optional ability: removes what a crash left outside (DNS-01 records); never throws. */
  removeLeftovers?(): Promise<void>;
}
