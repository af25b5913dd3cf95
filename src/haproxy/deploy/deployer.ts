import { CountedMap, DeployGeneration } from './generation.js';
import type { Logger } from 'pino';
import { coalesced, SerialQueue, withTimeout, WorkBehind } from '../../core/async.js';
import { CertdError, DiskFullError, HaproxyCommandError, isDiskFull } from '../../core/errors.js';
import { certDirLayout } from '../cert-dir.js';
import { unixSocketPath } from '../runtime/address.js';
import { RuntimeClient } from '../runtime/client.js';
import { DEFAULT_CERT_ID, sameListLine, withoutPem, type CertEntry, type DeployEntry } from './entry.js';
import { DeferredRewrite } from './deferred-rewrite.js';
import { DeployFiles } from './files.js';
import { certWork, InstanceSync, mapWork, type InstanceClient, type InstanceStatus, type WorkKey } from './instance.js';
import { noDeployMetrics, type DeployMetrics } from './metrics.js';
import { ReloadFallback } from './reload.js';
import { RemoteInstance, workVersion, type DeployTarget, type WorkVersions } from './remote-instance.js';

export interface DeployerOptions {
  certDir: string;
  crtList: string;
  /** Runtime API addresses ("unix:/run/haproxy/admin.sock", "tcp:127.0.0.1:9999"). */
  instances: { name?: string; runtime: string; master?: string }[];
  /** The fallback certificate: the crt-list's first line, served to names we do not know. */
  defaultEntry: DeployEntry;
  log: Logger;
  metrics?: DeployMetrics;
  pollMs?: number;
  /** Full reconcile of every instance this often (drift repair); off when absent. */
  reconcileEveryMs?: number;
  /** Least time between two fallback reloads of one instance (default 30 s). */
  reloadMinIntervalMs?: number;
  /** Makes the client of one instance from its runtime address (default: a RuntimeClient). */
  connect?: (runtime: string) => InstanceClient;
  /**
   * Active-active replicas: this process writes to an instance only while it owns it (`own`, by a
   * lease; `disown` when the lease is lost). The others are another replica's: changes made here
   * are answered when their owner announces it serves them (`remoteServed`).
   */
  replicas?: ReplicaHooks;
}

/** What the deployer tells the other replicas (a shared store's notifications carry it). */
export interface ReplicaHooks {
  /** The instances this process owns serve these versions now (after a push of any change). */
  served(instance: string, versions: WorkVersions): void;
  /** A managed map changed here (the owners of the other instances apply it). */
  mapChanged(map: ManagedMap, set: Record<string, string>, deleted: string[]): void;
}

const connectRuntime = (runtime: string): InstanceClient => new RuntimeClient(runtime);

/** Maps the daemon keeps on every instance (files in certDir, loaded by the haproxy-config snippets). */
export type ManagedMap = 'known' | 'acme';

/** What a reload asked of an instance (Deployer.reloadFromFiles) became: reloaded, or why not. */
export interface ReloadOutcome {
  instance: string;
  reloaded: boolean;
  error?: string;
}

/**
 * How long a caller waits for the slowest instance. Past it the answer names the instances still
 * pending (they keep retrying): one hung HAProxy must not hold up an `issue` for long.
 */
const DEPLOY_WAIT_MS = 5_000;
/** Initial entries written per batch at start (their PEMs held meanwhile: ~3 KB each). */
const START_BATCH = 32;
/**
 * With answerWhenServed, once one instance serves a certificate the others get this long more
 * before the answer goes out without them. Healthy instances push the same work within a few ms
 * of each other (~3 ms a push here), so the instance whose handshake waits is among them; a hung
 * or restarting member of the fleet no longer holds every on-demand handshake until maxWait.
 */
const ANSWER_GRACE_MS = 250;
/**
 * The crt-list and known.map are rewritten whole, off the answer path (see DeferredRewrite): at
 * least 50 ms after a change, then 4× the last rewrite's duration, at most 2 s. A restart of
 * HAProxy in that window is covered: the daemon re-pushes what a restarted instance lacks.
 */
const REWRITE = { minDelayMs: 50, maxDelayMs: 2_000, delayFactor: 4 };

export interface UpsertOptions {
  /** How long to wait for the slowest instance (default DEPLOY_WAIT_MS). */
  timeoutMs?: number;
  /**
   * Resolve once the instances serve the certificates (once one does, ANSWER_GRACE_MS later at the
   * latest); the files and the known.map entries follow behind. For a waiting handshake: HAProxy
   * already has it in memory, and a restart before the files land is covered because the daemon
   * re-pushes to a restarted instance.
   */
  answerWhenServed?: boolean;
}

export interface DeployOutcome {
  /** Instances that serve the change now. */
  ok: string[];
  /** Instances that failed (they keep retrying in the background). */
  failed: { instance: string; error: string }[];
}

/**
 * Deploy, always in this order: write the files HAProxy reads at start (atomically), then push the
 * same state to every instance over the runtime API, concurrently across instances and serially
 * within each. Safe to call concurrently: file writes are serialized and coalesced.
 */
export class Deployer {
  /** What every instance should serve, without PEMs (held in `pems` until on disk, then read back). */
  /** Counts every change to `desired` and `desiredMaps` (an instance's pass skips when none happened). */
  private readonly generation = new DeployGeneration();
  private readonly desired = new CountedMap<string, CertEntry>(this.generation);
  /** PEMs not yet durable in certDir, by id, with the entry they belong to. */
  private readonly pems = new Map<string, { entry: CertEntry; pem: string }>();
  /** Ids whose crt-list line or names changed since the list files were last marked. */
  private readonly relist = new Set<string>();
  /**
   * Per-id push rank for an instance catching up, lower first: names a waiting handshake asked
   * for (negative, the latest lowest), then the priority hint (0, 1, …), then the rest.
   */
  private readonly rank = new Map<string, number>();
  private asks = 0;
  /** map path → key → value; known.map is derived from the certificates' names. */
  private readonly desiredMaps = new Map<string, Map<string, string>>();
  private readonly mapPaths: Record<ManagedMap, string>;
  private readonly mapFiles: Record<ManagedMap, DeferredRewrite>;
  private readonly files: DeployFiles;
  /** By instance name; static ones from config, discovered ones come and go. */
  private readonly instances = new Map<string, DeployTarget>();
  /** Runtime and master address by instance name: what `own` needs to start writing to one. */
  private readonly addresses = new Map<string, { runtime: string; master?: string }>();
  private started = false;
  private readonly discovered = new Set<string>();
  /** `*.parent` SNI filters → certificate id, for covers(). */
  private readonly wildcards = new Map<string, string>();
  /** Certificates whose PEM file is written (any version). */
  private readonly onDisk = new Set<string>();
  private reconcileTimer?: NodeJS.Timeout;
  private readonly crtListFile: DeferredRewrite;
  private readonly fileQueue = new SerialQueue();
  /** PEMs waiting for the next batched write (by id: a newer version replaces an older one). */
  private readonly unwritten = new Map<string, CertEntry>();
  /** File writes left running behind an on-demand answer. */
  private readonly behind = new WorkBehind();
  private readonly writeUnwritten: () => Promise<void>;
  /** Settles once every file write started so far has (see InstanceOptions.filesWritten). */
  private filesWritten: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: DeployerOptions) {
    this.files = new DeployFiles(o.certDir, o.crtList);
    this.setDesired(o.defaultEntry);
    const rewrite = (what: string, write: () => Promise<void>) =>
      new DeferredRewrite(write, { ...REWRITE, onError: (err) => this.o.log.error({ file: what, err: (err as Error).message }, 'could not rewrite a certDir file (retried at the next change)') });
    // The crt-list only ever names PEMs already on disk: an HAProxy starting at any moment can load it.
    this.crtListFile = rewrite(o.crtList, () => this.files.writeCrtList([...this.desired.values()].filter((e) => this.onDisk.has(e.id))));
    // Concurrent upserts share one write of all their PEMs (parallel inside) instead of queueing.
    this.writeUnwritten = coalesced(() => this.serialFiles(() => this.writePems()));
    this.mapPaths = { known: certDirLayout(o.certDir).knownMap, acme: certDirLayout(o.certDir).acmeMap };
    const mapFile = (path: string) => rewrite(path, () => this.files.writeMap(path, this.desiredMaps.get(path)!));
    this.mapFiles = { known: mapFile(this.mapPaths.known), acme: mapFile(this.mapPaths.acme) };
    for (const path of Object.values(this.mapPaths)) this.desiredMaps.set(path, new CountedMap(this.generation));
    o.instances.forEach((inst, i) =>
      this.addInstance(inst.name ?? (o.instances.length === 1 ? 'haproxy' : `haproxy-${i + 1}`), inst.runtime, inst.master),
    );
  }

  private addInstance(name: string, runtime: string, master?: string): DeployTarget {
    this.addresses.set(name, { runtime, master });
    const target = this.o.replicas
      ? new RemoteInstance(name, runtime, this.desired, this.desiredMaps, this.mapPaths.known)
      : this.instanceSync(name, runtime, master);
    this.instances.set(name, target);
    if (this.started) target.start();
    return target;
  }

  private instanceSync(name: string, runtime: string, master?: string): InstanceSync {
    const o = this.o;
    return new InstanceSync({
      name,
      client: (o.connect ?? connectRuntime)(runtime),
      crtList: o.crtList,
      certDir: o.certDir,
      desired: this.desired,
      desiredMaps: this.desiredMaps,
      knownMap: this.mapPaths.known,
      log: o.log,
      metrics: o.metrics ?? noDeployMetrics,
      pollMs: o.pollMs,
      runtime,
      reload: master ? new ReloadFallback(unixSocketPath(master), name, o.log, o.reloadMinIntervalMs) : undefined,
      // A fallback reload loads the files: the list files too, not only the PEMs, must be there.
      filesWritten: () => this.filesWritten.then(() => this.flushListFiles()),
      pem: (e) => this.pemOf(e),
      rank: this.rank,
      generation: () => this.generation.value,
    });
  }

  /** Names of the instances in the fleet now (configured and discovered), owned or not. */
  instanceNames(): string[] {
    return [...this.instances.keys()];
  }

  /**
   * This process now owns `name` (replicas): it writes to it from here on, starting with a full
   * reconcile; callers waiting on the previous owner are answered by this one. False for an
   * instance not (or no longer) in the fleet.
   */
  async own(name: string): Promise<boolean> {
    const remote = this.instances.get(name);
    const address = this.addresses.get(name);
    if (!(remote instanceof RemoteInstance) || !address) return remote instanceof InstanceSync;
    const sync = this.instanceSync(name, address.runtime, address.master);
    this.instances.set(name, sync);
    if (this.started) sync.start();
    await remote.handOver(sync);
    return true;
  }

  /** This process no longer owns `name` (its lease is lost): it stops writing to it at once. */
  async disown(name: string): Promise<void> {
    const sync = this.instances.get(name);
    const address = this.addresses.get(name);
    if (!(sync instanceof InstanceSync) || !address || !this.o.replicas) return;
    const remote = new RemoteInstance(name, address.runtime, this.desired, this.desiredMaps, this.mapPaths.known);
    this.instances.set(name, remote);
    await sync.stop(0);
  }

  /** Another replica's announcement: `instance`, which it owns, serves these versions. */
  remoteServed(owner: string, instance: string, versions: WorkVersions): void {
    const target = this.instances.get(instance);
    if (target instanceof RemoteInstance) target.noteServed(owner, versions);
  }

  /**
   * Reloads every instance this process owns so that it loads the files (InstanceSync.reloadFromFiles:
   * list files flushed first, the new worker reconciled at once). Resolves with what became of each:
   * reloaded, or why not (no master socket, a failed reload); never rejects.
   */
  async reloadFromFiles(reason: string): Promise<ReloadOutcome[]> {
    const owned = [...this.instances.values()].filter((i): i is InstanceSync => i instanceof InstanceSync);
    return Promise.all(
      owned.map((i) =>
        i.reloadFromFiles(reason).then(
          (reloaded) => ({ instance: i.name, reloaded }),
          (err: Error) => ({ instance: i.name, reloaded: false, error: err.message }),
        ),
      ),
    );
  }

  /** Whether some instance is another replica's: a change must reach the store before it can be served there. */
  hasRemoteInstances(): boolean {
    return [...this.instances.values()].some((i) => i instanceof RemoteInstance);
  }

  /**
   * Makes the discovered part of the fleet exactly `found` (name → runtime address): new instances
   * start with a full reconcile, vanished ones are stopped. Static instances are never touched.
   */
  async setDiscovered(found: ReadonlyMap<string, string>): Promise<void> {
    for (const [name, runtime] of found) {
      const have = this.instances.get(name);
      if (have && have.runtime === runtime) continue;
      if (have) await have.stop();
      this.o.log.info({ instance: name, runtime }, 'instance discovered');
      this.addInstance(name, runtime);
      this.discovered.add(name);
    }
    for (const name of [...this.discovered]) {
      if (found.has(name)) continue;
      this.o.log.info({ instance: name }, 'instance gone from discovery');
      await this.instances.get(name)?.stop();
      this.instances.delete(name);
      this.addresses.delete(name);
      this.discovered.delete(name);
      this.o.metrics?.instanceGone(name);
    }
  }

  /**
   * Writes every file for the initial set (PEMs already holding the same content are left alone),
   * then starts one worker per instance (each reconciles). `o.priority`: see prioritize().
   * `initial` is consumed a batch at a time and each batch's PEMs leave memory once written: at
   * 100,000 stored the start never holds every key and chain at once (it did: ~450 MB of heap
   * whose pages the process kept after the start).
   */
  async start(initial: Iterable<DeployEntry> | AsyncIterable<DeployEntry>, o: { priority?: Iterable<string> } = {}): Promise<void> {
    // Replicas may share the certDir (one host): a temp file another one is writing right now is
    // not a leftover; one older than a minute is (a write takes milliseconds).
    const leftovers = await this.files.prepare((err) => this.o.log.warn({ err: err.message }, 'crash leftover not removed'), { olderThanMs: this.o.replicas ? 60_000 : 0 });
    if (leftovers > 0) this.o.log.info({ certDir: this.o.certDir, removed: leftovers }, 'removed temp files a previous run left behind');
    if (o.priority) this.prioritize(o.priority);
    await this.files.writeEntries([this.o.defaultEntry], { skipUnchanged: true });
    let batch: DeployEntry[] = [];
    const writeBatch = async () => {
      // Written first, then recorded without the PEM: no instance runs yet, so none needs it
      // from memory (and a PEM never reaches the long-lived maps, whose writes keep it alive longer).
      await this.files.writeEntries(batch, { skipUnchanged: true });
      for (const e of batch) {
        const entry = withoutPem(e);
        this.desired.set(e.id, entry);
        this.noteKnown(entry);
        this.onDisk.add(e.id);
      }
      batch = [];
    };
    for await (const e of initial) {
      batch.push(e);
      if (batch.length >= START_BATCH) await writeBatch();
    }
    await writeBatch();
    for (const id of this.desired.keys()) this.onDisk.add(id);
    this.pems.clear();
    this.relist.clear();
    for (const file of [this.crtListFile, this.mapFiles.known, this.mapFiles.acme]) file.mark();
    await this.flushListFiles();
    await this.mapFiles.acme.flush();
    this.started = true;
    for (const inst of this.instances.values()) inst.start();
    if (this.o.reconcileEveryMs) {
      // Drift repair: whatever changed an instance behind our back is put right at the next pass.
      this.reconcileTimer = setInterval(() => {
        for (const inst of this.instances.values()) inst.requestReconcile();
      }, this.o.reconcileEveryMs);
      this.reconcileTimer.unref();
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.reconcileTimer);
    await Promise.all([...this.instances.values()].map((i) => i.stop()));
    await this.behind.drain();
    // A clean stop leaves the list files complete (a crash leaves them at most REWRITE.maxDelayMs behind).
    await this.flushListFiles().catch((err: unknown) => this.o.log.error({ err: (err as Error).message }, 'could not write the crt-list or known.map at stop'));
  }

  /**
   * Hints which certificates are most used (e.g. configured names), first first: an instance
   * catching up (fresh, restarted) is pushed those before the others, after the names waiting
   * handshakes asked for since the daemon started (upsert with answerWhenServed, latest first).
   * Replaces the previous hint; ids not desired are kept for when they are.
   */
  prioritize(ids: Iterable<string>): void {
    for (const [id, r] of this.rank) if (r >= 0) this.rank.delete(id);
    let i = 0;
    for (const id of ids) if (!this.rank.has(id)) this.rank.set(id, i++);
  }

  /** A waiting handshake asked for these (on-demand): the most used names we learn of, pushed first. */
  private noteAsked(ids: Iterable<string>): void {
    for (const id of ids) this.rank.set(id, -++this.asks);
  }

  /** Writes the crt-list and known.map now if a change is waiting for its deferred rewrite. */
  private async flushListFiles(): Promise<void> {
    await Promise.all([this.crtListFile.flush(), this.mapFiles.known.flush()]);
  }

  /** Records `e` as desired (without its PEM, which waits in `pems` until it is on disk). */
  private setDesired(e: DeployEntry): CertEntry {
    const entry = withoutPem(e);
    this.desired.set(e.id, entry);
    this.pems.set(e.id, { entry, pem: e.pem });
    return entry;
  }

  /** The PEM to push for `e`: from memory until it is on disk, then from its file. */
  private async pemOf(e: CertEntry): Promise<string> {
    const held = this.pems.get(e.id);
    if (held) return held.pem;
    try {
      return await this.files.readPem(e);
    } catch (err) {
      // For this certificate alone (not an instance outage): reported, retried at the next reconcile.
      throw new HaproxyCommandError(`${e.id}: cannot read ${e.pemPath} to push it (${(err as Error).message}); the daemon writes it again at its next start`, { cause: err });
    }
  }

  /**
   * Resolves once every file write is done: those left behind answers (on-demand PEMs) and the
   * deferred crt-list/known.map rewrite they marked. Throws if that rewrite fails.
   */
  async drain(): Promise<void> {
    await this.behind.drain();
    await this.flushListFiles();
  }

  /** Adds or replaces certificates everywhere; resolves when every instance answered (or failed). */
  async upsert(all: DeployEntry[], o: UpsertOptions = {}): Promise<DeployOutcome> {
    const work: WorkKey[] = [];
    // What is already desired as is needs no file write; instances are still asked, so the
    // answer says where it is served.
    const entries = all.filter((e) => {
      const have = this.desired.get(e.id);
      const same = have !== undefined && have.sha1 === e.sha1 && sameListLine(have, e) && have.caFile?.pem === e.caFile?.pem;
      if (same) work.push(certWork(e.id));
      return !same;
    });
    for (const e of entries) {
      const old = this.desired.get(e.id);
      if (old) work.push(...this.forgetKnown(old));
      const entry = this.setDesired(e);
      // A renewal keeps its line and names: the list files need no rewrite for it.
      if (!old || !sameListLine(old, entry) || old.sni.join(' ') !== entry.sni.join(' ')) this.relist.add(e.id);
      this.unwritten.set(e.id, entry);
      work.push(certWork(e.id), ...this.noteKnown(entry));
    }
    const writeFiles = (): Promise<void> => {
      if (entries.length === 0) return Promise.resolve();
      // The PEMs only: the crt-list and known.map that name them follow within REWRITE's bound.
      const writing = this.writeUnwritten();
      this.filesWritten = Promise.allSettled([this.filesWritten, writing]);
      return writing;
    };
    if (o.answerWhenServed) this.noteAsked(all.map((e) => e.id));
    if (!o.answerWhenServed) {
      // Files and the runtime push run side by side (fsyncs cost more than the push). A restart in
      // between is covered: the push follows restarts.
      const [pushed, written] = await Promise.allSettled([this.fanOut(work, o.timeoutMs ?? DEPLOY_WAIT_MS), writeFiles()]);
      if (pushed.status === 'rejected') throw pushed.reason;
      if (written.status === 'rejected') throw this.filesFailed(entries, pushed.value, written.reason);
      return pushed.value;
    }
    // A waiting handshake needs the certificate served; its known.map entry and the files follow,
    // so their work does not share the event loop and the disk with the push.
    const pushed = this.fanOut(work, o.timeoutMs ?? DEPLOY_WAIT_MS, work.filter((w) => w.startsWith('c:')), ANSWER_GRACE_MS);
    this.behind.after(pushed, () =>
      writeFiles().catch((err: unknown) =>
        this.o.log.error({ certs: entries.map((e) => e.id), err: (err as Error).message }, 'could not write certificate files (served from memory until a restart)'),
      ),
    );
    return pushed;
  }

  /** The error for files that could not be written, saying what is served all the same. */
  private filesFailed(entries: readonly { id: string }[], pushed: DeployOutcome, cause: unknown): Error {
    const ids = entries.map((e) => e.id).join(', ');
    const served = pushed.ok.length > 0 ? `served by ${pushed.ok.join(', ')} from memory` : 'served by no instance yet';
    const why = isDiskFull(cause) ? 'no space left on device' : (cause as Error).message;
    const message =
      `${ids}: ${served}, but the files in ${this.o.certDir} could not be written (${why}): a restarted HAProxy would not serve ` +
      'it; free space and the daemon writes them again at the next change or start';
    return isDiskFull(cause) ? new DiskFullError(message, { cause }) : new CertdError('CERTD_E_DEPLOY_FILES', message, { cause });
  }

  /**
   * Writes the PEMs waiting in `unwritten` (those no longer desired as queued are skipped), then
   * lets go of them and marks the list files for a rewrite if a line or a name changed.
   */
  private async writePems(): Promise<void> {
    const batch = [...this.unwritten.values()].filter((e) => this.desired.get(e.id) === e);
    this.unwritten.clear();
    try {
      await this.files.writeEntries(batch.map((e) => ({ ...e, pem: this.pems.get(e.id)!.pem })));
    } catch (err) {
      // Queued again (unless a newer version came meanwhile): the next upsert retries them.
      for (const e of batch) if (!this.unwritten.has(e.id)) this.unwritten.set(e.id, e);
      throw err;
    }
    let relist = false;
    for (const e of batch) {
      this.onDisk.add(e.id);
      if (this.pems.get(e.id)?.entry === e) this.pems.delete(e.id);
      if (this.relist.delete(e.id)) relist = true;
    }
    if (relist) {
      this.crtListFile.mark();
      this.mapFiles.known.mark();
    }
  }

  /** Sets entries of a managed map on every instance (file first); resolves when all answered. */
  setMapEntries(map: ManagedMap, entries: Record<string, string>, timeoutMs = DEPLOY_WAIT_MS): Promise<DeployOutcome> {
    this.o.replicas?.mapChanged(map, entries, []);
    return this.changeMap(map, entries, [], timeoutMs);
  }

  deleteMapEntries(map: ManagedMap, keys: string[], timeoutMs = DEPLOY_WAIT_MS): Promise<DeployOutcome> {
    this.o.replicas?.mapChanged(map, {}, keys);
    return this.changeMap(map, {}, keys, timeoutMs);
  }

  /** Another replica changed a managed map: applied here (and pushed to the instances this one owns), not announced again. */
  remoteMapChange(map: ManagedMap, set: Record<string, string>, deleted: string[]): Promise<DeployOutcome> {
    return this.changeMap(map, set, deleted, DEPLOY_WAIT_MS);
  }

  private async changeMap(map: ManagedMap, set: Record<string, string>, deleted: string[], timeoutMs: number): Promise<DeployOutcome> {
    const path = this.mapPaths[map];
    const want = this.desiredMaps.get(path)!;
    for (const [k, v] of Object.entries(set)) want.set(k, v);
    for (const k of deleted) want.delete(k);
    this.mapFiles[map].mark();
    await this.mapFiles[map].flush();
    return this.fanOut([...Object.keys(set), ...deleted].map((k) => mapWork(path, k)), timeoutMs);
  }

  /** Path of a managed map file, as the HAProxy config must reference it. */
  mapPath(map: ManagedMap): string {
    return this.mapPaths[map];
  }

  /** Whether a certificate line serves this name: exactly, or through a `*.parent` wildcard. */
  covers(name: string): boolean {
    if (this.desiredMaps.get(this.mapPaths.known)!.has(name)) return true;
    return this.wildcards.has(`*.${name.slice(name.indexOf('.') + 1)}`);
  }

  /** Adds an entry's exact names to known.map (wildcards cannot be looked up exactly: kept aside). */
  private noteKnown(e: CertEntry): WorkKey[] {
    const known = this.desiredMaps.get(this.mapPaths.known)!;
    for (const w of e.sni.filter((n) => n.startsWith('*.'))) this.wildcards.set(w, e.id);
    const names = e.sni.filter((n) => !n.startsWith('*.'));
    for (const n of names) known.set(n, e.id);
    return names.map((n) => mapWork(this.mapPaths.known, n));
  }

  /** Removes an entry's names from known.map unless another certificate still claims them. */
  private forgetKnown(e: CertEntry): WorkKey[] {
    const known = this.desiredMaps.get(this.mapPaths.known)!;
    for (const w of e.sni) if (this.wildcards.get(w) === e.id) this.wildcards.delete(w);
    const names = e.sni.filter((n) => known.get(n) === e.id);
    for (const n of names) known.delete(n);
    return names.map((n) => mapWork(this.mapPaths.known, n));
  }

  /** Stops serving certificates everywhere and removes their files. */
  async remove(ids: string[], timeoutMs = DEPLOY_WAIT_MS): Promise<DeployOutcome> {
    const gone = ids.map((id) => this.desired.get(id)).filter((e): e is CertEntry => Boolean(e) && e!.id !== DEFAULT_CERT_ID);
    const work: WorkKey[] = [];
    for (const e of gone) {
      this.desired.delete(e.id);
      this.pems.delete(e.id);
      if ((this.rank.get(e.id) ?? 0) < 0) this.rank.delete(e.id);
      work.push(certWork(e.id), ...this.forgetKnown(e));
    }
    if (gone.length > 0) {
      this.crtListFile.mark();
      this.mapFiles.known.mark();
    }
    // A removal waits for the rewrite (its files may go only once the crt-list no longer names them).
    const [outcome] = await Promise.all([this.fanOut(work, timeoutMs), this.flushListFiles()]);
    // After the crt-list no longer names them, a restarting HAProxy can't need the files.
    const unused = gone.filter((e) => !this.desired.has(e.id));
    await this.serialFiles(() => this.files.removeEntries(unused));
    for (const e of unused) this.onDisk.delete(e.id);
    return outcome;
  }

  has(id: string): boolean {
    return this.desired.has(id);
  }

  /** Names of the instances that serve this certificate as desired now. */
  deployedOn(id: string): string[] {
    return [...this.instances.values()].filter((i) => i.serves(id)).map((i) => i.name);
  }

  /** Each desired certificate (not the default one): whether every instance serves it as desired. */
  readiness(): Map<string, boolean> {
    const instances = [...this.instances.values()];
    const ready = new Map<string, boolean>();
    for (const id of this.desired.keys()) if (id !== DEFAULT_CERT_ID) ready.set(id, instances.every((i) => i.serves(id)));
    return ready;
  }

  status(): InstanceStatus[] {
    return [...this.instances.values()].map((i) => i.status());
  }

  /**
   * Marks the work on every instance; resolves when each has done it, failed, or timed out. With
   * `graceMs`, resolves at the latest `graceMs` after the first instance has done it: the ones
   * still pushing are reported failed (their push goes on).
   */
  private async fanOut(ids: WorkKey[], timeoutMs: number, waitFor?: WorkKey[], graceMs?: number): Promise<DeployOutcome> {
    const outcome: DeployOutcome = { ok: [], failed: [] };
    let graceOver: (() => void) | undefined;
    const grace = new Promise<void>((resolve) => (graceOver = resolve));
    let timer: NodeJS.Timeout | undefined;
    const all = Promise.all(
      [...this.instances.values()].map(async (inst) => {
        try {
          await withTimeout(inst.sync(ids, waitFor), timeoutMs, () => {
            throw new CertdError('CERTD_E_DEPLOY_TIMEOUT', `instance ${inst.name}: deploy took over ${timeoutMs} ms`, { category: 'unavailable' });
          });
          outcome.ok.push(inst.name);
          if (graceMs !== undefined) timer ??= setTimeout(graceOver!, graceMs);
        } catch (err) {
          outcome.failed.push({ instance: inst.name, error: err instanceof Error ? err.message : String(err) });
        }
      }),
    );
    await Promise.race([all, grace]);
    clearTimeout(timer);
    this.announce(outcome.ok, ids);
    const answered = new Set([...outcome.ok, ...outcome.failed.map((f) => f.instance)]);
    const late = [...this.instances.keys()].filter((name) => !answered.has(name));
    return {
      ok: [...outcome.ok],
      failed: [...outcome.failed, ...late.map((instance) => ({ instance, error: `still pushing ${graceMs} ms after another instance served it (it goes on)` }))],
    };
  }

  /** Replicas: the owned instances among `ok` serve `ids` as desired now; the others are told. */
  private announce(ok: readonly string[], ids: readonly WorkKey[]): void {
    const hooks = this.o.replicas;
    if (!hooks) return;
    const versions = ids.filter((k) => !k.startsWith(`m:${this.mapPaths.known}\n`)).map((k) => [k, workVersion(k, this.desired, this.desiredMaps)] as const);
    if (versions.length === 0) return;
    for (const name of ok) if (this.instances.get(name) instanceof InstanceSync) hooks.served(name, versions);
  }

  private serialFiles<T>(job: () => Promise<T>): Promise<T> {
    return this.fileQueue.run(job);
  }
}
