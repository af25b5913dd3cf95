import { X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { pemBlocks } from '../../core/bundle.js';
import { ConfigError } from '../../core/errors.js';
import { choosePreferredChain, linkTargets } from './chains.js';
import { createHttpTransport, type HttpResponse, type HttpTransport } from './http.js';
import { b64u, jwkThumbprint, publicJwk, signEab, signJws, type EabCredentials, type EcJwk } from './jws.js';
import { NoncePool, sendWithNonce } from './nonce.js';
import { parseRetryAfter, pollUntil, untilAborted } from './poll.js';
import {
  AcmeEabError,
  AcmeError,
  AcmeProblemError,
  parseProblem,
  problemError,
} from './problems.js';
import { ariCertId, parseRenewalInfo } from './renewal-info.js';
import {
  parseAccount,
  parseAuthorization,
  parseChallenge,
  parseDirectory,
  parseOrder,
  type AcmeAccount,
  type AcmeAuthorization,
  type AcmeChallenge,
  type AcmeDirectory,
  type AcmeOrder,
  type RenewalInfo,
} from './resources.js';

export interface AcmeClientOptions {
  directoryUrl: string;
  /** The account key, EC P-256: every request is signed ES256 with it. */
  accountKey: KeyObject;
  /** The account URL when already registered (sent as `kid`); newAccount() sets it otherwise. */
  accountUrl?: string;
  /** PEM trust for the CA's own TLS (Pebble, private CAs); the system store when absent. */
  caBundle?: string;
  /** Bound on each HTTP request (default 30 s). */
  requestTimeoutMs?: number;
  /** Default bound on waiting for an authorization or an order (default 3 min). */
  pollTimeoutMs?: number;
}

export interface NewAccountOptions {
  /** E-mail addresses; sent as mailto: contacts. */
  emails?: string[];
  eab?: EabCredentials;
  signal?: AbortSignal;
}

export interface NewOrderOptions {
  /** Validated names; IP literals become `ip` identifiers (RFC 8738). */
  names: readonly string[];
  /** Sent only when the directory's meta.profiles offers profiles; ConfigError when it lists others. */
  profile?: string;
  /** RFC 9773 certID of the certificate this order replaces; sent only when the CA offers ARI. */
  replaces?: string;
  signal?: AbortSignal;
}

export interface WaitOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

const JOSE = 'application/jose+json';
const PEM_CHAIN = 'application/pem-certificate-chain';

/**
 * A focused RFC 8555 client: one account key, one CA. Safe to call concurrently: the directory
 * is fetched once, nonces come from one shared pool, every other call is an independent
 * request. Every request is bounded by requestTimeoutMs and every wait takes an AbortSignal.
 */
export class AcmeClient {
  readonly directoryUrl: string;
  /** RFC 7638 thumbprint of the account key: the second half of every key authorization. */
  readonly thumbprint: string;
  private readonly accountKey: KeyObject;
  private readonly jwk: EcJwk;
  private readonly http: HttpTransport;
  private readonly nonces: NoncePool;
  private readonly pollTimeoutMs: number;
  private kid: string | undefined;
  private dir: Promise<AcmeDirectory> | undefined;

  constructor(opts: AcmeClientOptions) {
    this.directoryUrl = opts.directoryUrl;
    this.accountKey = opts.accountKey;
    this.jwk = publicJwk(opts.accountKey);
    this.thumbprint = jwkThumbprint(this.jwk);
    this.kid = opts.accountUrl;
    this.pollTimeoutMs = opts.pollTimeoutMs ?? 180_000;
    this.http = createHttpTransport({ caBundle: opts.caBundle, timeoutMs: opts.requestTimeoutMs });
    this.nonces = new NoncePool((signal) => this.fetchNonce(signal));
  }

  /** The account URL requests are signed for, once known. */
  get accountUrl(): string | undefined {
    return this.kid;
  }

  /** Signs later requests for this account URL (one registered elsewhere with the same key). */
  useAccount(url: string): void {
    this.kid = url;
  }

  /**
   * The directory, fetched once and cached; a failed fetch is retried by the next call. The shared
   * fetch is bounded by the request timeout, not by one caller's signal, so one caller giving up
   * does not fail the others.
   */
  directory(signal?: AbortSignal): Promise<AcmeDirectory> {
    if (!this.dir) {
      const loading = this.http
        .send(this.directoryUrl, { method: 'GET', headers: { accept: 'application/json' } })
        .then((res) => {
          if (res.status >= 400) throw this.failure(res, 'directory');
          return parseDirectory(this.json(res, 'directory'));
        });
      this.dir = loading;
      loading.catch(() => {
        if (this.dir === loading) this.dir = undefined;
      });
    }
    return untilAborted(this.dir, signal);
  }

  /** `<token>.<thumbprint>` (RFC 8555 §8.1). Pure. */
  keyAuthorization(token: string): string {
    return `${token}.${this.thumbprint}`;
  }

  /**
   * Finds the account of this key (onlyReturnExisting), or creates it agreeing to the CA's terms,
   * with the contacts and, when given, the external account binding. Remembers its URL for later
   * requests. A refused binding is AcmeEabError; a CA requiring one we lack fails before sending.
   */
  async newAccount(opts: NewAccountOptions = {}): Promise<{ url: string; account: AcmeAccount; created: boolean }> {
    const dir = await this.directory(opts.signal);
    try {
      const res = await this.post(dir.newAccount, { onlyReturnExisting: true }, 'account lookup', { signal: opts.signal, useJwk: true });
      return this.accountFrom(res, false);
    } catch (err) {
      if (!(err instanceof AcmeError) || err.problemType !== 'accountDoesNotExist') throw err;
    }
    if (dir.meta?.externalAccountRequired && !opts.eab) {
      throw new AcmeEabError(
        `${this.directoryUrl} requires external account binding: set eab: { kid, hmacKey } from your CA account`,
      );
    }
    const payload: Record<string, unknown> = { termsOfServiceAgreed: true };
    if (opts.emails?.length) payload.contact = opts.emails.map((e) => `mailto:${e}`);
    if (opts.eab) payload.externalAccountBinding = signEab(this.jwk, opts.eab, dir.newAccount);
    try {
      const res = await this.post(dir.newAccount, payload, 'account registration', { signal: opts.signal, useJwk: true });
      return this.accountFrom(res, res.status === 201);
    } catch (err) {
      // CAs report a bad binding as unauthorized or malformed; with a binding sent, that is the likely cause.
      if (opts.eab && err instanceof AcmeError && ['unauthorized', 'malformed'].includes(err.problemType ?? '')) {
        throw new AcmeEabError(
          `the CA refused the external account binding for kid ${JSON.stringify(opts.eab.kid)}: ${err.detail ?? err.message}; ` +
            'check eab.kid and eab.hmacKey',
          { cause: err, problem: { type: err.problemType!, detail: err.detail, subproblems: [...err.subproblems] } },
        );
      }
      throw err;
    }
  }

  /** Creates an order for the names. */
  async newOrder(opts: NewOrderOptions): Promise<AcmeOrder> {
    const dir = await this.directory(opts.signal);
    const payload: Record<string, unknown> = {
      identifiers: opts.names.map((value) => ({ type: isIP(value) ? 'ip' : 'dns', value })),
    };
    const offered = dir.meta?.profiles;
    if (opts.profile !== undefined && offered) {
      if (!Object.hasOwn(offered, opts.profile)) {
        throw new ConfigError(
          `profile ${JSON.stringify(opts.profile)} is not offered by ${this.directoryUrl}; ` +
            `it offers: ${Object.keys(offered).join(', ') || '(none)'}`,
        );
      }
      payload.profile = opts.profile;
    }
    if (opts.replaces !== undefined && dir.renewalInfo) payload.replaces = opts.replaces;
    const res = await this.post(dir.newOrder, payload, `new order for ${opts.names.join(', ')}`, { signal: opts.signal });
    return parseOrder(this.json(res, 'order'), this.location(res, 'order'));
  }

  async getOrder(url: string, signal?: AbortSignal): Promise<AcmeOrder> {
    return (await this.fetchOrder(url, signal)).value;
  }

  async getAuthorization(url: string, signal?: AbortSignal): Promise<AcmeAuthorization> {
    return (await this.fetchAuthorization(url, signal)).value;
  }

  /** Tells the CA the challenge response is in place (an empty JSON object, RFC 8555 §7.5.1). */
  async respondChallenge(url: string, signal?: AbortSignal): Promise<AcmeChallenge> {
    const res = await this.post(url, {}, 'challenge response', { signal });
    return parseChallenge(this.json(res, 'challenge'));
  }

  /**
   * Deactivates an authorization (RFC 8555 §7.5.2): an order given up on is then invalid at the
   * CA at once instead of pending until it expires.
   */
  async deactivateAuthorization(url: string, signal?: AbortSignal): Promise<AcmeAuthorization> {
    const res = await this.post(url, { status: 'deactivated' }, 'authorization deactivation', { signal });
    return parseAuthorization(this.json(res, 'authorization'), url);
  }

  /** Polls an authorization until it leaves `pending` (honouring Retry-After, bounded). */
  waitForAuthorization(url: string, opts: WaitOptions = {}): Promise<AcmeAuthorization> {
    return pollUntil((signal) => this.fetchAuthorization(url, signal), (a) => a.status !== 'pending', {
      signal: opts.signal,
      timeoutMs: opts.timeoutMs ?? this.pollTimeoutMs,
      what: `authorization ${url}`,
    });
  }

  /** Polls an order until it is neither `pending` nor `processing` (honouring Retry-After, bounded). */
  waitForOrder(url: string, opts: WaitOptions = {}): Promise<AcmeOrder> {
    return pollUntil(
      (signal) => this.fetchOrder(url, signal),
      (o) => o.status !== 'pending' && o.status !== 'processing',
      { signal: opts.signal, timeoutMs: opts.timeoutMs ?? this.pollTimeoutMs, what: `order ${url}` },
    );
  }

  /** Sends the CSR (DER) to the order's finalize URL; returns the order as the CA then reports it. */
  async finalize(order: AcmeOrder, csrDer: Uint8Array, signal?: AbortSignal): Promise<AcmeOrder> {
    const res = await this.post(order.finalize, { csr: b64u(csrDer) }, 'finalize', { signal, once: true });
    return parseOrder(this.json(res, 'order'), order.url);
  }

  /**
   * Downloads the certificate chain (leaf first, PEM). With `preferredChain`, also fetches the
   * alternates the CA links (`Link: rel="alternate"`) and returns the first chain with a
   * certificate issued by that common name, else the default chain.
   */
  async downloadCertificate(url: string, opts: { preferredChain?: string; signal?: AbortSignal } = {}): Promise<string> {
    const res = await this.post(url, undefined, 'certificate download', { signal: opts.signal, accept: PEM_CHAIN });
    const chains = [this.chainPem(res)];
    if (opts.preferredChain !== undefined) {
      const alternates = linkTargets(res.headerValues('link'), 'alternate', url);
      const fetched = await Promise.all(
        alternates.map(async (alt) =>
          this.chainPem(await this.post(alt, undefined, 'alternate chain download', { signal: opts.signal, accept: PEM_CHAIN })),
        ),
      );
      chains.push(...fetched);
    }
    return choosePreferredChain(chains, opts.preferredChain);
  }

  /** Revokes a certificate this account holds (RFC 8555 §7.6); `reason` is an RFC 5280 CRLReason code. */
  async revokeCert(certPem: string, opts: { reason?: number; signal?: AbortSignal } = {}): Promise<void> {
    const dir = await this.directory(opts.signal);
    const payload: Record<string, unknown> = { certificate: b64u(new X509Certificate(certPem).raw) };
    if (opts.reason !== undefined) payload.reason = opts.reason;
    await this.post(dir.revokeCert, payload, 'revocation', { signal: opts.signal });
  }

  /**
   * RFC 9773 renewal information for a certificate (unauthenticated GET), or undefined when the CA
   * does not offer it (no `renewalInfo` in the directory): the caller then keeps its own schedule.
   */
  async renewalInfo(certPem: string, signal?: AbortSignal): Promise<RenewalInfo | undefined> {
    const dir = await this.directory(signal);
    if (!dir.renewalInfo) return undefined;
    const url = `${dir.renewalInfo.replace(/\/+$/, '')}/${ariCertId(certPem)}`;
    const res = await this.http.send(url, { method: 'GET', headers: { accept: 'application/json' }, signal });
    if (res.status >= 400) throw this.failure(res, 'renewal information');
    return parseRenewalInfo(this.json(res, 'renewal information'), res.header('retry-after'));
  }

  /** Closes idle keep-alive connections to the CA. */
  close(): void {
    this.http.close();
  }

  private async fetchNonce(signal?: AbortSignal): Promise<string> {
    const dir = await this.directory(signal);
    const res = await this.http.send(dir.newNonce, { method: 'HEAD', signal });
    const nonce = res.header('replay-nonce');
    if (res.status >= 400 || !nonce) {
      throw new AcmeProblemError(`${dir.newNonce} answered HTTP ${res.status} without a Replay-Nonce`);
    }
    return nonce;
  }

  /**
   * A signed POST: `payload` undefined is a POST-as-GET. Signed with the account URL (`kid`),
   * or with the key itself (`jwk`) for newAccount. Non-2xx replies become typed errors.
   */
  private async post(
    url: string,
    payload: unknown,
    context: string,
    o: { signal?: AbortSignal; useJwk?: boolean; accept?: string; once?: boolean } = {},
  ): Promise<HttpResponse> {
    const { signal, useJwk = false, accept = 'application/json' } = o;
    let signer: { jwk: EcJwk } | { kid: string };
    if (useJwk) signer = { jwk: this.jwk };
    else if (this.kid !== undefined) signer = { kid: this.kid };
    else throw new AcmeProblemError(`${context}: no ACME account yet; register one with newAccount() first`);
    const res = await sendWithNonce(
      this.nonces,
      (nonce) =>
        this.http.send(url, {
          method: 'POST',
          headers: { 'content-type': JOSE, accept },
          body: JSON.stringify(signJws(this.accountKey, { ...signer, url, nonce }, payload)),
          signal,
          // A hung request is sent again, unless a second one could do harm (finalize twice).
          retryOnTimeout: !o.once,
        }),
      url,
      signal,
    );
    if (res.status >= 400) throw this.failure(res, context);
    return res;
  }

  private failure(res: HttpResponse, context: string): AcmeError {
    return problemError(parseProblem(res.status, res.body), context, {
      retryAfterMs: parseRetryAfter(res.header('retry-after')),
    });
  }

  private async fetchOrder(url: string, signal?: AbortSignal): Promise<{ value: AcmeOrder; retryAfterMs?: number }> {
    const res = await this.post(url, undefined, 'order status', { signal });
    return { value: parseOrder(this.json(res, 'order'), url), retryAfterMs: parseRetryAfter(res.header('retry-after')) };
  }

  private async fetchAuthorization(
    url: string,
    signal?: AbortSignal,
  ): Promise<{ value: AcmeAuthorization; retryAfterMs?: number }> {
    const res = await this.post(url, undefined, 'authorization status', { signal });
    return {
      value: parseAuthorization(this.json(res, 'authorization'), url),
      retryAfterMs: parseRetryAfter(res.header('retry-after')),
    };
  }

  private accountFrom(res: HttpResponse, created: boolean): { url: string; account: AcmeAccount; created: boolean } {
    const url = this.location(res, 'account');
    const account = parseAccount(this.json(res, 'account'));
    if (account.status !== 'valid') {
      throw new AcmeProblemError(`the ACME account ${url} is ${account.status}; a new account key is needed`);
    }
    this.kid = url;
    return { url, account, created };
  }

  private json(res: HttpResponse, what: string): unknown {
    try {
      return JSON.parse(res.body.toString('utf8'));
    } catch (cause) {
      throw new AcmeProblemError(`the CA's ${what} reply (HTTP ${res.status}) is not JSON`, { cause });
    }
  }

  private location(res: HttpResponse, what: string): string {
    const location = res.header('location');
    if (!location) throw new AcmeProblemError(`the CA's ${what} reply has no Location header`);
    return new URL(location, res.url).toString();
  }

  private chainPem(res: HttpResponse): string {
    const blocks = pemBlocks(res.body.toString('utf8')).filter((b) => b.type === 'CERTIFICATE');
    if (blocks.length === 0) throw new AcmeProblemError('the CA sent a certificate download without a PEM certificate');
    return blocks.map((b) => b.pem).join('');
  }
}
