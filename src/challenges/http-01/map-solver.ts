import { CertdError, InvalidNameError } from '../../core/errors.js';
import type { Deployer } from '../../haproxy/deploy/deployer.js';
import type { Http01Solver } from '../../issuers/acme/issuer.js';

/** ACME tokens are base64url (RFC 8555 §8.1); key authorizations add `.` and the thumbprint. */
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;
const KEY_AUTHORIZATION = /^[A-Za-z0-9_-]{1,256}\.[A-Za-z0-9_-]{43}$/;

/**
 * HTTP-01 answered by HAProxy itself: the token goes into acme.map on every instance (and the
 * file), and the haproxy-config snippet returns the map value for /.well-known/acme-challenge/<token>.
 * Any instance of an active-active fleet can answer the CA. The daemon keeps its own copy too
 * (`answer()`), for setups that route the path to the daemon. Safe to call concurrently.
 */
export class MapHttp01Solver implements Http01Solver {
  private readonly local = new Map<string, string>();

  constructor(private readonly deployer: Deployer) {}

  async present(token: string, keyAuthorization: string): Promise<void> {
    if (!TOKEN.test(token) || !KEY_AUTHORIZATION.test(keyAuthorization)) {
      throw new InvalidNameError('the CA sent an ACME token that is not base64url: refusing to put it into HAProxy');
    }
    this.local.set(token, keyAuthorization);
    const outcome = await this.deployer.setMapEntries('acme', { [token]: keyAuthorization });
    // The CA may ask any instance: validating before all of them answer would fail at random.
    if (outcome.failed.length > 0) {
      throw new CertdError(
        'CERTD_E_HTTP01_NOT_PUBLISHED',
        `HTTP-01 token not on every HAProxy instance (${outcome.failed.map((f) => `${f.instance}: ${f.error}`).join('; ')})`,
        { category: 'unavailable' },
      );
    }
  }

  async cleanup(token: string): Promise<void> {
    if (!TOKEN.test(token)) return;
    this.local.delete(token);
    await this.deployer.deleteMapEntries('acme', [token]);
  }

  /** The key authorization for a token this daemon is presenting, for its own HTTP responder. */
  answer(token: string): string | undefined {
    return this.local.get(token);
  }
}
