import { ConfigError } from '../../core/errors.js';
import { Rfc2136Client, type Rfc2136Options } from './rfc2136.js';

/**
 * What the ACME issuer needs from a DNS-01 provider. The same shape as the canonical interface in
 * src/issuers/acme/issuer.ts; kept here so this module does not depend on the issuer.
 */
export interface Dns01Solver {
  /** Publishes `txtValue` at `fqdn` and resolves once the authoritative server serves it. */
  present(fqdn: string, txtValue: string, signal?: AbortSignal): Promise<void>;
  /** Removes what present published; idempotent. The issuer calls it after every present, even a failed one. */
  cleanup(fqdn: string, txtValue: string): Promise<void>;
  /** Optional: checks the challenge names of an order before it is placed (CNAME loops, no solver). */
  prepare?(fqdns: readonly string[], signal?: AbortSignal): Promise<void>;
  /** Optional: removes records a failed clean-up or a crash left; called at start and after each order. */
  sweep?(): Promise<void>;
}

export interface Rfc2136SolverOptions extends Rfc2136Options {
  /** TTL of the challenge records; default 60 s (short, so a retry's new value is not hidden by caches). */
  ttl?: number;
  /** How long present waits for the server to serve the record; default 60 s. */
  propagationTimeoutMs?: number;
  /** Between those checks; default 500 ms. */
  pollIntervalMs?: number;
}

/**
 * DNS-01 through RFC 2136: present adds the TXT record (other values at the same name, such as
 * the second one a certificate for example.com and *.example.com needs, are kept) and waits until
 * the server answers with it; cleanup deletes exactly that value. The zone may be a delegated
 * `_acme-challenge.<name>` zone: the record then sits at the zone apex. Safe to call concurrently.
 */
export class Rfc2136Dns01Solver implements Dns01Solver {
  readonly #client: Rfc2136Client;
  readonly #opts: Rfc2136SolverOptions;

  constructor(opts: Rfc2136SolverOptions) {
    this.#client = new Rfc2136Client(opts);
    for (const field of ['ttl', 'propagationTimeoutMs', 'pollIntervalMs'] as const) {
      const value = opts[field];
      if (value !== undefined && !(Number.isInteger(value) && value > 0)) {
        throw new ConfigError(`rfc2136 solver ${field} must be a positive whole number; got ${value}`);
      }
    }
    this.#opts = opts;
  }

  async present(fqdn: string, txtValue: string, signal?: AbortSignal): Promise<void> {
    await this.#client.addTxt(fqdn, txtValue, this.#opts.ttl ?? 60, signal);
    await this.#client.waitForTxt(fqdn, txtValue, {
      timeoutMs: this.#opts.propagationTimeoutMs,
      intervalMs: this.#opts.pollIntervalMs,
      signal,
    });
  }

  async cleanup(fqdn: string, txtValue: string): Promise<void> {
    // RFC 2136 §3.4.2.4: deleting an RR that is not there is not an error, so a repeat is fine.
    await this.#client.deleteTxt(fqdn, txtValue);
  }
}
