import { createHash, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { parseBundle, type CertBundle } from '../../core/bundle.js';
import { ConfigError } from '../../core/errors.js';
import { buildCsr } from '../../crypto/csr.js';
import { exportPrivateKeyPem, generateKeyPair } from '../../crypto/keys.js';
import type { IssueRequest, Issuer, KeyType } from '../issuer.js';
import { acmeKeys, loadOrCreateAccount, type AcmeStorage } from './account.js';
import { acmeChannel } from './channel.js';
import { AcmeClient } from './client.js';
import type { EabCredentials } from './jws.js';
import { untilAborted } from './poll.js';
import {
  AcmeChallengeError,
  AcmeError,
  AcmeProblemError,
  problemError,
} from './problems.js';
import { ariCertId } from './renewal-info.js';
import type { AcmeAuthorization, AcmeOrder, RenewalInfo } from './resources.js';

/**
 * Serves HTTP-01 responses: `GET /.well-known/acme-challenge/<token>` must answer the key
 * authorization (text) on port 80 of every name. present() resolves once the response is live
 * everywhere the CA may look. cleanup() is always called after present(), success or not.
 */
export interface Http01Solver {
  present(token: string, keyAuthorization: string, signal?: AbortSignal): Promise<void>;
  cleanup(token: string): Promise<void>;
}

/**
 * Publishes DNS-01 records: a TXT `txtValue` at `fqdn`. present() resolves once the record is
 * visible to the CA (propagated to the authoritative servers). cleanup() is always called after
 * present(), success or not; several values may share one fqdn (a name and its wildcard).
 */
export interface Dns01Solver {
  /** `fqdn` is `_acme-challenge.<domain>` (no trailing dot); `txtValue` is base64url(sha256(keyAuthorization)). */
  present(fqdn: string, txtValue: string, signal?: AbortSignal): Promise<void>;
  cleanup(fqdn: string, txtValue: string): Promise<void>;
  /** Optional: checks an order's challenge names before the order is placed (a CNAME loop fails here). */
  prepare?(fqdns: readonly string[], signal?: AbortSignal): Promise<void>;
  /** Optional: removes records left by failed clean-ups or a crash; called after each order and by removeLeftovers(). */
  sweep?(): Promise<void>;
}

export type AcmeChallengeType = 'http-01' | 'dns-01';

export interface AcmeIssuerOptions {
  /** The issuer's config id; names its account in the store (acme/<id>/account.json). */
  id: string;
  /** The CA's directory URL. */
  directory: string;
  email?: string;
  eab?: EabCredentials;
  /** PEM text trusted for the CA's own TLS (Pebble, private CAs). */
  caBundle?: string;
  /** Certificate profile to ask for, when the CA offers profiles. */
  profile?: string;
  /** Issuer common name to prefer among the CA's alternate chains. */
  preferredChain?: string;
  /** Default key type of issued certificates (default ecdsa-p256). */
  keyType?: KeyType;
  challenge: AcmeChallengeType;
  solvers: { 'http-01'?: Http01Solver; 'dns-01'?: Dns01Solver };
  store: AcmeStorage;
  /** Bound on each HTTP request to the CA (default 30 s). */
  requestTimeoutMs?: number;
  /** Bound on each wait for validation or for the certificate (default 3 min). */
  pollTimeoutMs?: number;
  /** Told about failures that do not fail the issue (a cleanup that threw). Default: process.emitWarning. */
  onWarning?: (err: Error) => void;
}

/** An issue request that may name the certificate it renews (RFC 9773 `replaces`). */
export interface AcmeIssueRequest extends IssueRequest {
  /** PEM of the certificate this one replaces; sent as `replaces` when the CA offers ARI. */
  replaces?: string;
}

const KEY_TYPES: readonly KeyType[] = ['ecdsa-p256', 'rsa-2048'];

/** A challenge response put in place for one authorization, and how to take it down. */
interface Presented {
  present(signal?: AbortSignal): Promise<void>;
  cleanup(): Promise<void>;
}

/**
 * Issues certificates from an ACME CA (RFC 8555). Safe to call concurrently: the account is loaded
 * or registered once (single-flight, store-locked), then every issue runs its own order with its
 * own key over one shared client (directory cache, nonce pool, keep-alive connections).
 */
export class AcmeIssuer implements Issuer {
  readonly id: string;
  private readonly opts: AcmeIssuerOptions;
  private readonly keyType: KeyType;
  private readonly warn: (err: Error) => void;
  private loading: Promise<AcmeClient> | undefined;
  private loaded: AcmeClient | undefined;

  /** Throws ConfigError for an unsafe id, a bad directory URL, an unknown key type or a missing solver. */
  constructor(opts: AcmeIssuerOptions) {
    acmeKeys(opts.id);
    const where = `issuer "${opts.id}"`;
    if (!URL.canParse(opts.directory)) throw new ConfigError(`${where}: directory ${JSON.stringify(opts.directory)} is not a URL`);
    this.keyType = opts.keyType ?? 'ecdsa-p256';
    if (!KEY_TYPES.includes(this.keyType)) {
      throw new ConfigError(`${where}: keyType ${JSON.stringify(this.keyType)} is unknown; use ${KEY_TYPES.join(' or ')}`);
    }
    if (!opts.solvers[opts.challenge]) {
      throw new ConfigError(`${where}: challenge ${opts.challenge} needs a ${opts.challenge} solver, and none is configured`);
    }
    this.id = opts.id;
    this.opts = opts;
    this.warn = opts.onWarning ?? ((err) => process.emitWarning(err));
  }

  /**
   * Issues a certificate for req.names (validated; the first is the CN) with a new key. Presents
   * the configured challenge for every pending authorization in parallel, always cleans up, and
   * returns the full chain (leaf first) with the PKCS#8 key.
   */
  async issue(req: AcmeIssueRequest): Promise<CertBundle> {
    const { signal } = req;
    signal?.throwIfAborted();
    const names = [...new Set(req.names)];
    this.checkChallengeFits(names);
    const replaces = req.replaces !== undefined ? replacedCertId(req.replaces) : undefined;
    const { privateKey } = await generateKeyPair(req.keyType ?? this.keyType);
    const csr = buildCsr(privateKey, names);
    const dns01 = this.opts.challenge === 'dns-01' ? this.opts.solvers['dns-01'] : undefined;
    // Before the order: a name that cannot be answered must not leave one pending at the CA.
    await dns01?.prepare?.(names.map(challengeName), signal);
    try {
      const certPem = await this.withAccount(signal, (client) => this.obtain(client, names, csr.der, replaces, signal));
      return this.checked(certPem, privateKey, names);
    } finally {
      if (dns01) await this.removeLeftovers();
    }
  }

  /**
   * Removes DNS-01 records that earlier clean-ups could not (they are kept in the store until
   * removed); failures go to onWarning and are tried again after the next order. The daemon calls
   * it at start. Never throws.
   */
  async removeLeftovers(): Promise<void> {
    await this.opts.solvers['dns-01']?.sweep?.().catch((err: unknown) => {
      this.warn(new Error(`issuer "${this.id}": removing leftover DNS-01 records failed: ${String(err)}`));
    });
  }

  /**
   * RFC 9773 renewal information for a certificate this CA issued, or undefined when the CA does
   * not offer ARI. Loads (or on first use registers) the account like issue(). Safe to call
   * concurrently.
   */
  async renewalInfo(certPem: string, signal?: AbortSignal): Promise<RenewalInfo | undefined> {
    return (await this.ready(signal)).renewalInfo(certPem, signal);
  }

  /** Revokes a certificate issued to this account; `reason` is an RFC 5280 CRLReason code. */
  async revoke(certPem: string, opts: { reason?: number; signal?: AbortSignal } = {}): Promise<void> {
    await this.withAccount(opts.signal, (client) => client.revokeCert(certPem, opts));
  }

  /** Closes idle connections to the CA (daemon shutdown). */
  close(): void {
    this.loaded?.close();
  }

  /** The client with a registered account; registers on first use. A failure is retried next call. */
  private ready(signal?: AbortSignal): Promise<AcmeClient> {
    if (!this.loading) this.loading = this.track(this.connect(undefined));
    return untilAborted(this.loading, signal);
  }

  private track(loading: Promise<AcmeClient>): Promise<AcmeClient> {
    loading.then(
      (client) => {
        if (this.loading === loading) this.loaded = client;
      },
      () => {
        if (this.loading === loading) this.loading = undefined;
      },
    );
    return loading;
  }

  /**
   * Loads or registers the account. Not bound to a caller's signal: concurrent issues share it,
   * and registration is bounded by the request timeout.
   */
  private async connect(staleUrl: string | undefined): Promise<AcmeClient> {
    let registering: AcmeClient | undefined;
    try {
      const record = await loadOrCreateAccount(this.opts.store, this.id, {
        directory: this.opts.directory,
        staleUrl,
        register: async (key) => {
          registering = this.client(key);
          const emails = this.opts.email ? [this.opts.email] : [];
          const { url } = await registering.newAccount({ emails, eab: this.opts.eab });
          if (acmeChannel.hasSubscribers) acmeChannel.publish({ event: 'account-registered', issuer: this.id, url });
          return url;
        },
      });
      return registering ?? this.client(record.key, record.url);
    } catch (err) {
      registering?.close();
      throw err;
    }
  }

  private client(key: KeyObject, accountUrl?: string): AcmeClient {
    return new AcmeClient({
      directoryUrl: this.opts.directory,
      accountKey: key,
      accountUrl,
      caBundle: this.opts.caBundle,
      requestTimeoutMs: this.opts.requestTimeoutMs,
      pollTimeoutMs: this.opts.pollTimeoutMs,
    });
  }

  /**
   * Runs `work` with the account; if the CA no longer knows the account (a reset staging CA, a
   * restarted Pebble), registers the key again once and reruns it.
   */
  private async withAccount<T>(signal: AbortSignal | undefined, work: (client: AcmeClient) => Promise<T>): Promise<T> {
    const client = await this.ready(signal);
    try {
      return await work(client);
    } catch (err) {
      if (!(err instanceof AcmeError) || err.problemType !== 'accountDoesNotExist') throw err;
      if (this.loaded === client) {
        this.loaded = undefined;
        this.loading = this.track(this.connect(client.accountUrl));
      }
      return work(await this.ready(signal));
    }
  }

  /** Wildcards validate only over DNS and IP addresses only over HTTP: say so before asking the CA. */
  private checkChallengeFits(names: readonly string[]): void {
    const { challenge } = this.opts;
    for (const name of names) {
      if (name.startsWith('*.') && challenge !== 'dns-01') {
        throw new AcmeChallengeError(
          `${name} is a wildcard, and CAs validate wildcards only with dns-01; issuer "${this.id}" uses ${challenge}: ` +
            'set challenge: dns-01 with dns: { rfc2136: … }, or use an issuer that has it',
        );
      }
      if (isIP(name) && challenge === 'dns-01') {
        throw new AcmeChallengeError(
          `${name} is an IP address, which cannot be validated with dns-01; issuer "${this.id}" needs challenge: http-01 for it`,
        );
      }
    }
  }

  private async obtain(
    client: AcmeClient,
    names: string[],
    csrDer: Uint8Array,
    replaces: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    let order = await this.newOrder(client, names, replaces, signal);
    if (order.status === 'pending') {
      await this.authorize(client, order, signal).catch(async (err: unknown) => {
        await this.abandon(client, order);
        throw err;
      });
      order = await client.waitForOrder(order.url, { signal });
    }
    if (order.status === 'ready') order = await client.finalize(order, csrDer, signal);
    if (order.status === 'processing') order = await client.waitForOrder(order.url, { signal });
    if (order.status !== 'valid' || !order.certificate) throw orderFailure(order, names);
    return client.downloadCertificate(order.certificate, { preferredChain: this.opts.preferredChain, signal });
  }

  private async newOrder(
    client: AcmeClient,
    names: string[],
    replaces: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<AcmeOrder> {
    const profile = this.opts.profile;
    try {
      return await client.newOrder({ names, profile, replaces, signal });
    } catch (err) {
      // RFC 9773 §5: a certificate can be replaced once; a second renewal (a retry after a crash,
      // another node) is refused as alreadyReplaced, and is fine as a plain new order.
      if (replaces === undefined || !(err instanceof AcmeError) || err.problemType !== 'alreadyReplaced') throw err;
      return client.newOrder({ names, profile, signal });
    }
  }

  /**
   * Deactivates the order's authorizations that are still pending after a failed or cancelled
   * authorize, so the CA holds no pending order of ours. Not bound to the caller's signal (it may
   * be the reason); failures only warn.
   */
  private async abandon(client: AcmeClient, order: AcmeOrder): Promise<void> {
    await Promise.all(
      order.authorizations.map(async (url) => {
        try {
          const authz = await client.getAuthorization(url);
          if (authz.status === 'pending') await client.deactivateAuthorization(url);
        } catch (err) {
          this.warn(new Error(`issuer "${this.id}": could not deactivate authorization ${url}: ${String(err)}`));
        }
      }),
    );
  }

  /**
   * Completes every authorization of the order in parallel. Every response is in place before the
   * CA is asked to validate any: a name and its wildcard share one TXT name, and a CA resolver that
   * cached the answer with only the first value would fail the second. The first failure aborts
   * the others; all settle (and so clean up) before it is thrown.
   */
  private async authorize(client: AcmeClient, order: AcmeOrder, signal: AbortSignal | undefined): Promise<void> {
    const siblings = new AbortController();
    const shared = signal ? AbortSignal.any([signal, siblings.signal]) : siblings.signal;
    const allPresented = countdown(order.authorizations.length);
    let first: unknown;
    const results = await Promise.allSettled(
      order.authorizations.map((url) =>
        this.authorizeOne(client, url, shared, allPresented).catch((err: unknown) => {
          if (first === undefined) {
            first = err;
            siblings.abort(err);
          }
          throw err;
        }),
      ),
    );
    if (results.some((r) => r.status === 'rejected')) throw first;
  }

  /** One authorization; arrives at `allPresented` once, when presented or when it ends otherwise. */
  private async authorizeOne(client: AcmeClient, url: string, signal: AbortSignal, allPresented: Countdown): Promise<void> {
    let arrived = false;
    const arrive = () => {
      if (!arrived) allPresented.arrive();
      arrived = true;
    };
    try {
      await this.presentAndValidate(client, url, signal, async () => {
        arrive();
        await untilAborted(allPresented.done, signal);
      });
    } finally {
      arrive();
    }
  }

  /** `othersPresented` resolves once every authorization of the order has its response in place. */
  private async presentAndValidate(client: AcmeClient, url: string, signal: AbortSignal, othersPresented: () => Promise<void>): Promise<void> {
    const authz = await client.getAuthorization(url, signal);
    const name = authzName(authz);
    // A CA may reuse an authorization this account completed recently.
    if (authz.status === 'valid') return;
    if (authz.status !== 'pending') throw authzFailure(authz, name, this.opts.challenge);
    const challenge = authz.challenges.find((c) => c.type === this.opts.challenge);
    if (!challenge?.token) {
      const offered = authz.challenges.map((c) => c.type).join(', ') || 'none';
      throw new AcmeChallengeError(`the CA offers no ${this.opts.challenge} challenge for ${name} (offered: ${offered})`);
    }
    const presented = this.presenter(authz, client.keyAuthorization(challenge.token), challenge.token);
    try {
      await presented.present(signal);
      await othersPresented();
      if (challenge.status === 'pending') await client.respondChallenge(challenge.url, signal);
      const done = await client.waitForAuthorization(url, { signal });
      if (done.status !== 'valid') throw authzFailure(done, name, this.opts.challenge);
    } finally {
      await presented.cleanup().catch((err: unknown) => {
        this.warn(new Error(`issuer "${this.id}": ${this.opts.challenge} cleanup for ${name} failed: ${String(err)}`));
      });
    }
  }

  private presenter(authz: AcmeAuthorization, keyAuthorization: string, token: string): Presented {
    if (this.opts.challenge === 'http-01') {
      const solver = this.opts.solvers['http-01']!;
      return { present: (signal) => solver.present(token, keyAuthorization, signal), cleanup: () => solver.cleanup(token) };
    }
    const solver = this.opts.solvers['dns-01']!;
    const fqdn = challengeName(authz.identifier.value);
    const txt = createHash('sha256').update(keyAuthorization).digest('base64url');
    return { present: (signal) => solver.present(fqdn, txt, signal), cleanup: () => solver.cleanup(fqdn, txt) };
  }

  /** The CA's chain must belong to our key and cover every name asked for. */
  private checked(certPem: string, privateKey: KeyObject, names: readonly string[]): CertBundle {
    const keyPem = exportPrivateKeyPem(privateKey);
    const bundle = parseBundle(certPem, keyPem);
    const missing = names.filter((n) => !bundle.names.includes(n));
    if (missing.length > 0) {
      throw new AcmeProblemError(`the CA issued a certificate without ${missing.join(', ')}; not using it`);
    }
    return { certPem: bundle.certPem, keyPem };
  }
}

/** `replaces` is only a hint to the CA: a certificate we cannot name (no AKI) renews without it. */
function replacedCertId(certPem: string): string | undefined {
  try {
    return ariCertId(certPem);
  } catch {
    return undefined;
  }
}

/** `done` resolves once arrive() was called `n` times (each party calls it once). */
interface Countdown {
  arrive(): void;
  done: Promise<void>;
}

function countdown(n: number): Countdown {
  let left = n;
  let open!: () => void;
  const done = new Promise<void>((resolve) => (open = resolve));
  if (left <= 0) open();
  return {
    arrive: () => {
      if (--left === 0) open();
    },
    done,
  };
}

/** RFC 8555 §8.4: the record is at _acme-challenge of the base domain, also for a wildcard. */
function challengeName(name: string): string {
  return `_acme-challenge.${name.replace(/^\*\./, '')}`;
}

function authzName(authz: AcmeAuthorization): string {
  return authz.wildcard ? `*.${authz.identifier.value}` : authz.identifier.value;
}

function authzFailure(authz: AcmeAuthorization, name: string, type: AcmeChallengeType): AcmeError {
  const failed = authz.challenges.find((c) => c.type === type && c.error) ?? authz.challenges.find((c) => c.error);
  if (failed?.error) return problemError(failed.error, `validation of ${name} (${failed.type})`);
  return new AcmeProblemError(`the authorization for ${name} is ${authz.status}`);
}

function orderFailure(order: AcmeOrder, names: readonly string[]): AcmeError {
  const context = `order for ${names.join(', ')}`;
  if (order.error) return problemError(order.error, context);
  return new AcmeProblemError(`${context} ended ${order.status}${order.certificate ? '' : ' without a certificate URL'}`);
}
