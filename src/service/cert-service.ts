import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { parseBundle } from '../core/bundle.js';
import { DiskFullError, isDiskFull, NotFoundError, UsageError } from '../core/errors.js';
import { SingleFlight, WorkBehind } from '../core/async.js';
import { certId, checkNameCount, validateName } from '../core/names.js';
import type { Deployer, DeployOutcome, UpsertOptions } from '../haproxy/deploy/deployer.js';
import { makeDeployEntry, type DeployEntry } from '../haproxy/deploy/entry.js';
import type { CertTlsOptions } from '../haproxy/crtlist/line.js';
import type { IssuedBundle, Issuer, KeyType } from '../issuers/issuer.js';
import { catalogOf, type PageRequest } from '../store/catalog.js';
import type { CertQuery } from '../store/cert-query.js';
import type { CertMeta, CertOrigin, Lock, Store, StoredCert } from '../store/store.js';
import { noServiceMetrics, type ServiceMetrics } from './metrics.js';
import type { RenewalRules } from './renewal-rules.js';

/** Per-certificate settings from config: crt-list options and an optional client CA. */
export interface CertPolicy {
  issuer: string;
  keyType?: KeyType;
  options: CertTlsOptions;
  clientCaPem?: string;
}

export interface ServiceOptions {
  store: Store;
  issuers: ReadonlyMap<string, Issuer>;
  defaultIssuer: string;
  /** Absent when acting on the store only (CLI without a running daemon). */
  deployer?: Deployer;
  certDir: string;
  log: Logger;
  metrics?: ServiceMetrics;
  /** crt-list options per certificate id, from config. */
  policies?: ReadonlyMap<string, CertPolicy>;
  /** What may be renewed, and when a stored certificate is too old to reuse. */
  rules: RenewalRules;
}

export interface CertView extends CertMeta {
  deployedOn: string[];
  /** Whether certd renews it (the renewal rules: not an import or a source, its issuer configured). */
  renewable: boolean;
}

/** Certificates to walk in one synchronous pass: soonest expiry first, without copies. */
export interface CertIndex {
  size: number;
  /** Every certificate, soonest expiry first (ties by id); do not await while iterating. */
  byExpiry(): Iterable<CertMeta>;
  issuers(): string[];
  deployedOn(id: string): string[];
  renewable(meta: CertMeta): boolean;
}

/** One page of a listing (CertService.page). */
export interface CertPage {
  certs: CertView[];
  /** The catalog's cursor for the next page; absent on the last one. */
  next?: string;
  /** Certificates stored in all (not only those matching). */
  stored: number;
}

export interface IssueResult {
  cert: CertMeta;
  /** False when an existing valid certificate was returned (another caller or daemon issued it). */
  issued: boolean;
  deploy?: DeployOutcome;
}

export interface RemoveResult {
  removed: string;
  names: string[];
  /** Undefined when only a deployment was left (nothing stored). */
  origin?: CertOrigin;
  deploy?: DeployOutcome;
}

const ISSUE_LOCK_WAIT_MS = 120_000;
/** Certificates read ahead while the deployer writes the ones before (start). */
const READ_AHEAD = 8;

/** An issuer's answer on its way, and when it was asked. */
interface Signing {
  started: number;
  bundle: Promise<IssuedBundle>;
}

/** What a request is for, once its names are valid and its issuer known. */
interface Target {
  id: string;
  names: string[];
  issuer: Issuer;
}

/** The issue lock held, and what the store had under it. */
interface Held {
  /** A certificate another caller or daemon stored meanwhile: use it, do not issue. */
  found?: StoredCert;
  /** Releases the lock (and removes the crash intent, when one was written). */
  settle(): Promise<void>;
  /** The issue lock: the save is fenced with it (refused if its lease was lost meanwhile). */
  lock: Lock;
}

export interface EnsureOptions {
  issuer?: string;
  origin?: CertOrigin;
  /** Issue even though a valid certificate is stored (renew). */
  force?: boolean;
  signal?: AbortSignal;
  /** The certificate this one replaces (ACME ARI `replaces`). */
  replaces?: string;
}

export interface HandshakeOptions {
  issuer?: string;
  signal?: AbortSignal;
  /**
   * Awaited once the store is locked and before issuing; a rejection stops the issue with its
   * error (the ask URL's answer, asked while the store is looked up and locked). An issuer that
   * signsLocally may sign meanwhile: its result is dropped on a rejection.
   */
  approval?: Promise<unknown>;
}

/**
 * decide → issue (or load) → store → deploy, in two named orders: `ensure` (every entry point:
 * CLI, API, config, renewal, restart recovery) and `ensureForHandshake` (on-demand: a handshake
 * waits). They share the lock-and-recheck and issue steps and one single-flight per certificate:
 * one issuance per certificate at a time (in-process), the store lock across daemons, re-checked
 * after locking. Safe to call concurrently.
 */
export class CertService {
  private readonly flights = new SingleFlight<IssueResult>();
  /** Store writes left running behind an on-demand answer. */
  private readonly behind = new WorkBehind();
  private readonly metrics: ServiceMetrics;

  constructor(private readonly o: ServiceOptions) {
    this.metrics = o.metrics ?? noServiceMetrics;
  }

  /**
   * Ensures a valid certificate for `names` is stored and deployed: look → intent → lock →
   * recheck → issue → save → deploy. Issues only when none is stored, the names changed, it is
   * past its renewal point, or `force` (renew) is set.
   */
  ensure(rawNames: string[], opts: EnsureOptions = {}): Promise<IssueResult> {
    const target = this.target(rawNames, opts.issuer);
    const { id, names } = target;
    const origin = opts.origin ?? 'api';
    return this.flights.run(id, async () => {
      const fresh = opts.force ? undefined : await this.usable(target);
      if (fresh) return { cert: fresh.meta, issued: false, deploy: await this.deploy([fresh]) };
      // Record the intent first: a daemon killed mid-issue finishes it at its next start.
      await storeWrite(id, this.o.store.putPending({ id, names, issuer: target.issuer.id, origin, requestedAt: new Date().toISOString(), ...(opts.force ? { renew: true } : {}) }));
      const { found, settle, lock } = await this.lockAndRecheck(target, { ...opts, intent: true });
      let stored: StoredCert;
      try {
        stored = found ?? (await this.issue(target, origin, this.startIssue(target, opts)));
        if (!found) await this.save(stored, lock);
      } finally {
        await settle();
      }
      return { cert: stored.meta, issued: !found, deploy: await this.deploy([stored]) };
    });
  }

  /**
   * A certificate for an SNI a handshake waits for: lock → recheck + approval + local sign →
   * deploy → save behind. Resolves as soon as HAProxy serves it; the store and the files are
   * written behind (see `drain`), the lock held until the store has it so no other daemon issues
   * the name meanwhile. No crash intent is recorded: the next handshake for the name asks again.
   * Joins an `ensure` of the same certificate in flight.
   */
  ensureForHandshake(rawName: string, opts: HandshakeOptions = {}): Promise<IssueResult> {
    const target = this.target([rawName], opts.issuer);
    const { id, issuer } = target;
    return this.flights.run(id, async () => {
      // No unlocked look first: the name is not served, so it is rarely stored, and the look under
      // the lock finds it (each look is a disk read while a handshake waits).
      let signed: Signing | undefined;
      const { found, settle, lock } = await this.lockAndRecheck(target, { signal: opts.signal, intent: false }, () => {
        // A local CA's signature has no effect outside this process: it signs while the look (a
        // disk read) and the ask URL are in flight, and the result is dropped if either says no.
        if (!issuer.signsLocally) return;
        signed = this.startIssue(target, opts);
        signed.bundle.catch(() => undefined);
      });
      const served: UpsertOptions = { answerWhenServed: true };
      if (found) {
        await settle();
        return { cert: found.meta, issued: false, deploy: await this.deploy([found], served) };
      }
      let stored: StoredCert;
      try {
        await opts.approval;
        stored = await this.issue(target, 'ondemand', signed ?? this.startIssue(target, opts));
      } catch (err) {
        await settle();
        throw err;
      }
      if (this.o.deployer?.hasRemoteInstances()) {
        // Another replica writes to some instance: it learns of the certificate from the store, so
        // the store first; the handshake is answered once the owners announce they serve it.
        try {
          await this.save(stored, lock);
        } finally {
          await settle();
        }
        return { cert: stored.meta, issued: true, deploy: await this.deploy([stored], served) };
      }
      const deployed = this.deploy([stored], served);
      this.behind.after(deployed, () =>
        this.save(stored, lock)
          .catch((err: Error) => this.o.log.error({ cert: id, err: err.message }, 'could not store the certificate (served until a restart, then issued again)'))
          .finally(() => settle().catch((err: Error) => this.o.log.warn({ cert: id, err: err.message }, 'could not release the issue lock (it frees itself when its lease ends)'))),
      );
      return { cert: stored.meta, issued: true, deploy: await deployed };
    });
  }

  /**
   * Other replicas changed these certificates in the shared store, read back (`stored`, one
   * read for the batch) or gone (`gone`): what is stored now is deployed in one upsert (pushed to
   * the instances this replica owns), the gone ones stop being served.
   */
  async redeploy(stored: readonly StoredCert[], gone: readonly string[]): Promise<void> {
    const removed = gone.filter((id) => this.o.deployer?.has(id));
    await Promise.all([stored.length > 0 ? this.deploy([...stored]) : undefined, removed.length > 0 ? this.o.deployer?.remove(removed) : undefined]);
  }

  /** Resolves once the store writes left behind answers are done (daemon stop, before the store closes). */
  drain(): Promise<void> {
    return this.behind.drain();
  }

  /**
   * The certificates a manual renewal acts on (`renew NAME…` / `renew --all`): every one the rules
   * call renewable, or those named (by id or any name). NotFoundError, or the rules' refusal, for a
   * name before anything is renewed.
   */
  async renewalTargets(target: string[] | 'all'): Promise<CertMeta[]> {
    const catalog = await catalogOf(this.o.store);
    const { rules } = this.o;
    if (target === 'all') return catalog.all().filter((m) => rules.renewable(m));
    return target.map((raw) => {
      const name = validateName(raw, { wildcard: true, ip: true });
      const meta = catalog.get(certId(name)) ?? catalog.find(name);
      if (!meta) throw new NotFoundError(`no certificate for "${name}"; see \`haproxy-certd list\``);
      const refusal = rules.whyNotRenewable(meta);
      if (refusal) throw refusal;
      return meta;
    });
  }

  /** Re-issues one certificate now, counted as a manual renewal; the caller decides what a failure stops. */
  async renewOne(meta: CertMeta): Promise<IssueResult> {
    try {
      const result = await this.ensure(meta.names, { issuer: meta.issuer, origin: meta.origin, force: true });
      this.metrics.renewal(meta.id, 'ok', 'manual');
      return result;
    } catch (err) {
      this.metrics.renewal(meta.id, 'error', 'manual');
      throw err;
    }
  }

  /**
   * Stores and deploys a certificate the operator (or a source) brings: combined PEM or cert + key.
   * The same certificate again is a no-op (sources rescan; restarts re-import everything).
   */
  async importPem(certPem: string, keyPem = '', origin: 'import' | 'source' = 'import'): Promise<IssueResult> {
    const parsed = parseBundle(certPem, keyPem);
    const names = parsed.names.map((n) => validateName(n, { wildcard: true, ip: true }));
    const id = certId(names[0]!);
    const existing = await this.o.store.loadCert(id);
    if (existing?.meta.fingerprint === parsed.fingerprint) return { cert: existing.meta, issued: false, deploy: await this.deploy([existing]) };
    const stored = toStored(id, names, 'import', origin, parsed);
    await this.save(stored);
    this.o.log.info({ cert: id, names, origin, notAfter: stored.meta.notAfter }, 'imported');
    return { cert: stored.meta, issued: false, deploy: await this.deploy([stored]) };
  }

  /** Removes the certificate with this id, else the stored one that has the name among its names. */
  async remove(rawIdOrName: string): Promise<RemoveResult> {
    const name = validateName(rawIdOrName, { wildcard: true, ip: true });
    const catalog = await catalogOf(this.o.store);
    const meta = catalog.get(certId(name)) ?? catalog.find(name);
    const id = meta?.id ?? certId(name);
    const existed = await this.o.store.deleteCert(id);
    await this.o.store.deletePending(id);
    if (!existed && !this.o.deployer?.has(id)) throw new NotFoundError(`no certificate "${id}"; see \`haproxy-certd list\``);
    this.metrics.certRemoved(id);
    this.o.log.info({ cert: id }, 'removed');
    return { removed: id, names: meta?.names ?? [name], origin: meta?.origin, deploy: await this.o.deployer?.remove([id]) };
  }

  /** Every certificate, sorted by id: O(N); listings at scale use page(). */
  async list(): Promise<CertView[]> {
    return (await catalogOf(this.o.store)).all().map((m) => this.view(m));
  }

  /** One page of certificates from the catalog (see CertCatalog.page), with how many are stored in all. */
  async page(req: PageRequest): Promise<CertPage> {
    const catalog = await catalogOf(this.o.store);
    const { certs, next } = catalog.page(req);
    return { certs: certs.map((m) => this.view(m)), ...(next === undefined ? {} : { next }), stored: catalog.size };
  }

  /** The certificates as the catalog indexes them, for one synchronous pass (the status page). */
  async index(): Promise<CertIndex> {
    const catalog = await catalogOf(this.o.store);
    return {
      size: catalog.size,
      byExpiry: () => catalog.byExpiry(),
      issuers: () => catalog.issuers(),
      deployedOn: (id) => this.o.deployer?.deployedOn(id) ?? [],
      renewable: (m) => this.o.rules.renewable(m),
    };
  }

  /** How many stored certificates match (see CertCatalog.count for what is O(1)). */
  async count(q?: CertQuery): Promise<number> {
    return (await catalogOf(this.o.store)).count(q);
  }

  /** A certificate as listings show it: where it is deployed, whether certd renews it. */
  view(m: CertMeta): CertView {
    // The same object as { ...m, deployedOn, renewable }, made ~10× faster: V8 takes a slow path
    // for a spread followed by more properties (~2 µs a certificate, 0.2 s of a 100,000 listing).
    const v = Object.assign({}, m) as CertView;
    v.deployedOn = this.o.deployer?.deployedOn(m.id) ?? [];
    v.renewable = this.o.rules.renewable(m);
    return v;
  }

  /**
   * Deploy entries for everything stored (the deployer's starting set), one at a time as they are
   * read (a few reads ahead): the deployer writes and drops each PEM before the next batch is
   * read, so a start holds a batch of keys, not all of them.
   */
  async *streamDeployEntries(): AsyncGenerator<DeployEntry> {
    const metas = await this.o.store.listCerts();
    const reading: Promise<StoredCert | undefined>[] = [];
    let next = 0;
    const readAhead = () => {
      while (reading.length < READ_AHEAD && next < metas.length) {
        const read = this.o.store.loadCert(metas[next++]!.id);
        // Awaited below; one left unread when the consumer stops early must not crash the process.
        read.catch(() => undefined);
        reading.push(read);
      }
    };
    for (const meta of metas) {
      readAhead();
      const cert = await reading.shift()!;
      // The entry's strings (id, names, serial) taken from the listed metadata, which the catalog
      // keeps anyway, when the file says the same: not a second copy of each per certificate.
      if (cert) yield this.entryFor(sameMeta(cert.meta, meta) ? { ...cert, meta } : cert);
      this.metrics.certStored(meta);
    }
  }

  /**
   * Finishes issue requests a previous daemon left behind (killed mid-issue): an intent whose
   * certificate was stored after it was written is only removed (the kill came after the save);
   * a renewal is redone even though the old certificate is still valid.
   */
  async finishPending(): Promise<void> {
    for (const p of await this.o.store.listPending()) {
      const stored = await this.o.store.loadCert(p.id);
      if (stored && Date.parse(stored.meta.updatedAt) >= Date.parse(p.requestedAt)) {
        this.o.log.info({ cert: p.id }, 'interrupted issue had finished: intent removed');
        await this.o.store.deletePending(p.id);
        continue;
      }
      this.o.log.info({ cert: p.id, names: p.names, renew: p.renew === true }, 'finishing an issue interrupted by a stop');
      try {
        await this.ensure(p.names, { issuer: p.issuer, origin: p.origin, force: p.renew });
        await this.o.store.deletePending(p.id);
      } catch (err) {
        this.o.log.error({ cert: p.id, err: (err as Error).message }, 'could not finish interrupted issue');
      }
    }
  }

  /** Valid names, the certificate id and its issuer (the request's, else the config's, else the default). */
  private target(rawNames: string[], issuerId?: string): Target {
    if (rawNames.length === 0) throw new UsageError('give at least one name');
    const names = [...new Set(rawNames.map((n) => validateName(n, { wildcard: true, ip: true })))];
    checkNameCount(names);
    const id = certId(names[0]!);
    const chosen = issuerId ?? this.o.policies?.get(id)?.issuer ?? this.o.defaultIssuer;
    const issuer = this.o.issuers.get(chosen);
    if (!issuer) throw new UsageError(`unknown issuer "${chosen}"; configured: ${[...this.o.issuers.keys()].join(', ')}`);
    return { id, names, issuer };
  }

  /**
   * Lock, check again, then work: takes the certificate's issue lock, then looks in the store
   * (unless `force`) — another daemon may have finished while we waited. `meanwhile` runs while
   * that look is in flight. `intent`: the crash intent written before goes with the lock (the
   * intent is for crash recovery only: an issuer's answer, even a refusal, settles it).
   */
  private async lockAndRecheck(t: Target, o: { force?: boolean; signal?: AbortSignal; intent: boolean }, meanwhile?: () => void): Promise<Held> {
    const lock = await this.o.store.lock(`issue/${t.id}`, { waitMs: ISSUE_LOCK_WAIT_MS, signal: o.signal });
    // The intent's delete and the release side by side (one round trip, not two): an intent of
    // the next holder's could be deleted either way, since it is written before its lock is taken.
    const settle = async () => {
      const [deleted, released] = await Promise.allSettled([o.intent ? this.o.store.deletePending(t.id) : undefined, lock.release()]);
      for (const r of [deleted, released]) if (r.status === 'rejected') throw r.reason;
    };
    try {
      const looking = o.force ? undefined : this.usable(t);
      meanwhile?.();
      return { found: await looking, settle, lock };
    } catch (err) {
      await settle();
      throw err;
    }
  }

  /** A stored certificate for exactly these names that is not yet due for renewal. */
  private async usable({ id, names }: Target): Promise<StoredCert | undefined> {
    const cert = await this.o.store.loadCert(id);
    if (!cert) return undefined;
    const same = cert.meta.names.length === names.length && names.every((n) => cert.meta.names.includes(n));
    return same && !this.o.rules.isDue(cert.meta) ? cert : undefined;
  }

  /** Asks the issuer; issue() waits for and records the answer. */
  private startIssue({ id, names, issuer }: Target, o: { signal?: AbortSignal; replaces?: string }): Signing {
    const started = performance.now();
    return { started, bundle: issuer.issue({ names, signal: o.signal, keyType: this.o.policies?.get(id)?.keyType, replaces: o.replaces }) };
  }

  /** Waits for the issuer's answer (from startIssue) and records it: metrics, log, what to store. */
  private async issue({ id, names, issuer }: Target, origin: CertOrigin, signing: Signing): Promise<StoredCert> {
    const { started } = signing;
    let bundle: IssuedBundle;
    try {
      bundle = await signing.bundle;
    } catch (err) {
      this.metrics.issued(issuer.id, 'error', started);
      this.o.log.error({ cert: id, issuer: issuer.id, err: (err as Error).message }, 'issue failed');
      throw err;
    }
    this.metrics.issued(issuer.id, 'ok', started);
    const parsed = bundle.facts ? { certPem: bundle.certPem, keyPem: bundle.keyPem, ...bundle.facts } : parseBundle(bundle.certPem, bundle.keyPem);
    const stored = toStored(id, names, issuer.id, origin, parsed);
    this.o.log.info({ cert: id, names, issuer: issuer.id, notAfter: stored.meta.notAfter, ms: Math.round(performance.now() - started) }, 'issued');
    return stored;
  }

  /** Fenced with the issue lock: a holder whose lease ran out (another daemon may issue now) does not overwrite. */
  private async save(stored: StoredCert, lock?: Lock): Promise<void> {
    await storeWrite(stored.meta.id, this.o.store.saveCert(stored, lock ? { fence: lock } : {}));
    this.metrics.certStored(stored.meta);
  }

  private async deploy(certs: StoredCert[], o?: UpsertOptions): Promise<DeployOutcome | undefined> {
    return this.o.deployer?.upsert(certs.map((c) => this.entryFor(c)), o);
  }

  private entryFor(cert: StoredCert): DeployEntry {
    const policy = this.o.policies?.get(cert.meta.id);
    const { names } = cert.meta;
    const entry = makeDeployEntry(this.o.certDir, {
      id: cert.meta.id,
      bundle: cert,
      // SNI never carries an IP address; IP SANs are served through the default line's fallback.
      // Without one, the names array itself (never mutated): one array per certificate, not two.
      sni: names.some((n) => isIP(n) !== 0) ? names.filter((n) => isIP(n) === 0) : names,
      options: policy?.options,
      caFilePem: policy?.clientCaPem,
    });
    // The same serial as the metadata's, kept once (the deployer holds an entry per certificate).
    if (entry.serial === cert.meta.serial) entry.serial = cert.meta.serial;
    return entry;
  }
}

/** True when two metadata records say the same (a certificate's file read again after listing it). */
function sameMeta(a: CertMeta, b: CertMeta): boolean {
  return (
    a.id === b.id &&
    a.fingerprint === b.fingerprint &&
    a.serial === b.serial &&
    a.updatedAt === b.updatedAt &&
    a.names.length === b.names.length &&
    a.names.every((n, i) => n === b.names[i])
  );
}

/** A store write whose failure on a full disk says that nothing was applied. */
async function storeWrite(id: string, write: Promise<void>): Promise<void> {
  try {
    await write;
  } catch (err) {
    if (!isDiskFull(err)) throw err;
    throw new DiskFullError(`${id}: not applied: the store is out of disk space (no space left on device); nothing was served or changed: free space and retry`, { cause: err });
  }
}

function toStored(id: string, names: string[], issuer: string, origin: CertOrigin, parsed: ReturnType<typeof parseBundle>): StoredCert {
  return {
    certPem: parsed.certPem,
    keyPem: parsed.keyPem,
    meta: {
      id,
      names,
      issuer,
      origin,
      notBefore: parsed.notBefore,
      notAfter: parsed.notAfter,
      serial: parsed.serial,
      fingerprint: parsed.fingerprint,
      updatedAt: new Date().toISOString(),
    },
  };
}
