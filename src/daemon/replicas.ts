import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { ClusterStatus, ReplicaView } from '../api/status-view.js';
import { VERSION } from '../core/version.js';
import { coalesced } from '../core/async.js';
import type { Deployer, ManagedMap, ReplicaHooks } from '../haproxy/deploy/deployer.js';
import type { HandOff } from '../ondemand/forward.js';
import type { WorkVersions } from '../haproxy/deploy/remote-instance.js';
import type { CertService } from '../service/cert-service.js';
import type { CatalogStore } from '../store/catalog.js';
import { MAX_PAYLOAD_BYTES, type Channel, type PgListener } from '../store/postgres/listener.js';
import { StoreUnavailableError, type PgLock, type PgStore, type ReplicaRecord } from '../store/postgres/pg-store.js';
import type { StoredCert } from '../store/store.js';

/** The lease that makes one replica run the cluster-wide work: renewals, sources, configured certificates. */
const SINGLETON_LOCK = 'replica/singleton';
const instanceLock = (name: string) => `instance/${name}`;
/** Certificates read back per statement when many changes were told at once (a resync's, a burst's). */
const READ_BATCH = 200;

/** Told when this replica starts or stops running the cluster-wide work (see SINGLETON_LOCK). */
export interface SingletonWork {
  start(): void;
  stop(): Promise<void>;
}

export interface ReplicasOptions {
  store: PgStore;
  log: Logger;
  /** Lease of every ownership (instances, the singleton): a dead replica's work moves within about this. */
  leaseMs: number;
}

/**
 * Active-active on a shared PostgreSQL store: every replica answers the API and on-demand; each
 * HAProxy instance is written to by exactly one of them, the holder of its lease
 * (`instance/<name>`, with a fencing token), which loses it — and stops writing at once — when the
 * lease is not confirmed in time; the cluster-wide work runs on the holder of one more lease.
 * Changes reach the others as notifications: a certificate saved or deleted (sent by the store),
 * an owner's announcement that its instance serves a version (which answers a caller waiting on a
 * replica that owns no instance), a managed map's change (HTTP-01 tokens).
 *
 * `hooks` is handed to the Deployer before it exists; `start` wires the rest.
 */
export class Replicas {
  readonly hooks: ReplicaHooks;
  private deployer?: Deployer;
  private service?: CertService;
  private catalog?: CatalogStore;
  private work?: SingletonWork;
  private listener?: PgListener;
  private readonly owned = new Map<string, PgLock>();
  private singleton?: PgLock;
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  private stopped = false;
  private readonly upSince = new Date();
  private api = '';
  /** The registry as last read (at each tick), and when (this host's clock). */
  private registry: { rows: ReplicaRecord[]; readAt: number } = { rows: [], readAt: 0 };
  private lastBeat?: Date;
  /** Certificates other replicas told of, not yet read back (see takeChanges). */
  private readonly told = new Set<string>();
  /**
   * Reads back what was told, one batch at a time: the first change at once, those told while a
   * batch is read form the next one (a burst of issuances across replicas costs the owner one
   * read + one push per batch, not one per certificate).
   */
  private readonly takeTold = coalesced(() => this.takeChanges());

  constructor(private readonly o: ReplicasOptions) {
    this.hooks = {
      served: (instance, versions) => this.announce(instance, versions),
      mapChanged: (map, set, deleted) => this.publish('certd_maps', { map, set, deleted }),
    };
  }

  get id(): string {
    return this.o.store.replicaId;
  }

  /** Listens first (nothing changed meanwhile is missed), then takes what is free and keeps looking. */
  async start(parts: { deployer: Deployer; service: CertService; catalog: CatalogStore; work: SingletonWork; api: string }): Promise<void> {
    Object.assign(this, parts);
    this.listener = await this.o.store.listen(
      (channel, payload) => this.received(channel, payload),
      () => void this.resync(),
    );
    await this.tick();
    this.schedule();
  }

  /** Stops taking work, then lets go of every lease (another replica takes over at once, not at lease end). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    await this.listener?.close();
    if (this.singleton) await this.work?.stop();
    for (const name of this.owned.keys()) await this.deployer?.disown(name);
    await Promise.all([this.singleton, ...this.owned.values()].map((l) => l?.release().catch(() => undefined)));
    this.owned.clear();
    await this.o.store.replicaStopped(this.id).catch(() => undefined);
  }

  /**
   * Every replica in the registry (this one live, the others as last read, aged since) and the
   * store's health: what `status`, the status page and the metrics show. Reads nothing, so it
   * answers during an outage too (the others' rows then age into `gone`: this replica cannot tell).
   */
  view(): Required<ClusterStatus> {
    const since = Date.now() - this.registry.readAt;
    const others = this.registry.rows.filter((r) => r.id !== this.id).map((r): ReplicaView => {
      const age = r.heartbeatAgeMs + since;
      return {
        ...pick(r),
        self: false,
        heartbeatAgeMs: age,
        state: r.stoppedAt ? 'stopped' : age > r.leaseMs ? 'gone' : 'up',
      };
    });
    const beat = this.lastBeat ?? this.upSince;
    const self: ReplicaView = {
      ...pick(this.beat()),
      upSince: this.upSince.toISOString(),
      heartbeatAt: beat.toISOString(),
      heartbeatAgeMs: Date.now() - beat.getTime(),
      self: true,
      state: 'up',
    };
    return { replicas: [self, ...others], store: { type: 'postgres', ...this.o.store.healthDetail() } };
  }

  /**
   * Where this replica's on-demand calls go (OwnerForward). Undefined while this replica owns an
   * instance (it answers them itself). Else the API of the one other replica that writes to every
   * instance, as the registry was last read, or why there is none (the instances split between
   * replicas, the owner's heartbeat older than its lease): then the call is answered here, through
   * the store.
   */
  onDemandOwner(): HandOff | undefined {
    if (this.owned.size > 0 || this.stopped) return undefined;
    const fleet = this.deployer?.instanceNames() ?? [];
    if (fleet.length === 0) return { none: 'no instance is configured or discovered' };
    const since = Date.now() - this.registry.readAt;
    const owners = this.registry.rows.filter((r) => r.id !== this.id && !r.stoppedAt && r.heartbeatAgeMs + since <= r.leaseMs && r.owns.length > 0);
    if (owners.length === 0) return { none: 'no live replica owns an instance (as the registry was last read)' };
    if (owners.length > 1) return { none: `the instances are split between ${owners.length} replicas` };
    const owner = owners[0]!;
    if (!fleet.every((name) => owner.owns.some((o) => o.instance === name))) return { none: `replica ${owner.id} owns only ${owner.owns.map((o) => o.instance).join(', ')}` };
    return /^https?:\/\//.test(owner.api) ? { api: owner.api } : { none: `replica ${owner.id} has no HTTP API address (${owner.api})` };
  }

  /** Whether this replica runs the cluster-wide work now. */
  runsClusterWork(): boolean {
    return this.singleton !== undefined;
  }

  private beat() {
    return {
      id: this.id,
      host: hostname(),
      pid: process.pid,
      api: this.api,
      version: VERSION,
      upSince: this.upSince,
      leaseMs: this.o.leaseMs,
      owns: this.ownership(),
      ...(this.singleton ? { clusterWork: this.singleton.token } : {}),
    };
  }

  /** Instances this replica writes to now, with the fencing token of each lease. */
  ownership(): { instance: string; token: string }[] {
    return [...this.owned].map(([instance, lock]) => ({ instance, token: lock.token }));
  }

  private schedule(): void {
    if (this.stopped) return;
    // A fifth of the lease (at most 1 s): a dead owner's instance is taken within its lease and one look.
    this.timer = setTimeout(() => {
      this.ticking = this.tick().finally(() => {
        this.ticking = undefined;
        this.schedule();
      });
    }, Math.min(1_000, this.o.leaseMs / 5));
    this.timer.unref();
  }

  /** Takes every free lease: the singleton, then each instance nobody holds (a dead owner's too, once expired). */
  private async tick(): Promise<void> {
    const { log, leaseMs } = this.o;
    try {
      if (!this.singleton) {
        const lock = await this.o.store.tryLock(SINGLETON_LOCK, { leaseMs, onLost: (err) => void this.singletonLost(lock, err) });
        if (lock && !this.stopped) {
          this.singleton = lock;
          log.info({ replica: this.id, token: lock.token }, 'this replica runs the cluster-wide work (renewals, sources, configured certificates)');
          this.work?.start();
        } else await lock?.release();
      }
      const fleet = new Set(this.deployer?.instanceNames() ?? []);
      for (const [name, lock] of this.owned) {
        // Gone from the fleet (discovery): its lease goes too.
        if (fleet.has(name)) continue;
        this.owned.delete(name);
        await lock.release();
      }
      for (const name of fleet) {
        if (this.owned.has(name) || this.stopped) continue;
        const lock = await this.o.store.tryLock(instanceLock(name), { leaseMs, onLost: (err) => void this.instanceLost(name, lock, err) });
        if (!lock) continue;
        this.owned.set(name, lock);
        if (!(await this.deployer!.own(name))) {
          // Gone from the fleet meanwhile (discovery).
          this.owned.delete(name);
          await lock.release();
          continue;
        }
        log.info({ replica: this.id, instance: name, token: lock.token }, `this replica owns instance ${name} (fencing token ${lock.token}) and writes to it`);
      }
      // The registry: this replica's row, then everyone's (status reads the copy, never the store).
      const asked = new Date();
      await this.o.store.heartbeat(this.beat());
      this.lastBeat = asked;
      this.registry = { rows: await this.o.store.listReplicas(), readAt: Date.now() };
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not look for free instances and work (the store is away?); trying again');
    }
  }

  private async instanceLost(name: string, lock: PgLock | undefined, err: Error): Promise<void> {
    if (!lock || this.owned.get(name) !== lock) return;
    this.owned.delete(name);
    this.o.log.error({ replica: this.id, instance: name, token: lock.token, err: err.message }, `lost instance ${name}: this replica stops writing to it at once`);
    await this.deployer?.disown(name);
  }

  private async singletonLost(lock: PgLock | undefined, err: Error): Promise<void> {
    if (!lock || this.singleton !== lock) return;
    this.singleton = undefined;
    this.o.log.error({ replica: this.id, err: err.message }, 'lost the cluster-wide work: renewals and sources stop here (another replica takes them)');
    await this.work?.stop();
  }

  private received(channel: Channel, payload: unknown): void {
    const p = payload as Record<string, unknown>;
    if (channel === 'certd_certs' && typeof p.id === 'string') void this.changed([p.id]);
    else if (channel === 'certd_served' && typeof p.instance === 'string' && Array.isArray(p.versions)) {
      this.deployer?.remoteServed(String(p.by), p.instance, p.versions as WorkVersions);
    } else if (channel === 'certd_maps' && p.map === 'acme') {
      const set = (p.set ?? {}) as Record<string, string>;
      const deleted = Array.isArray(p.deleted) ? (p.deleted as string[]) : [];
      void this.deployer?.remoteMapChange(p.map as ManagedMap, set, deleted).catch((err: Error) => this.o.log.warn({ err: err.message }, 'could not apply another replica\'s map change'));
    }
  }

  /** Other replicas saved or deleted these certificates: read back with whatever else is told meanwhile. */
  private changed(ids: Iterable<string>): Promise<void> {
    for (const id of ids) this.told.add(id);
    return this.takeTold();
  }

  /**
   * Every certificate told of so far, read back in READ_BATCH statements: the catalog learns
   * each, and the owned instances get them in one upsert a batch (not awaited: a replica that
   * owns no instance waits there for the owner's announcement, which must not hold the next read).
   */
  private async takeChanges(): Promise<void> {
    const ids = [...this.told];
    this.told.clear();
    for (let i = 0; i < ids.length; i += READ_BATCH) await this.take(ids.slice(i, i + READ_BATCH));
  }

  /**
   * One batch read back and deployed. A batch refused for its content (a row that does not parse
   * or open) is read again one by one, so one bad row costs only itself; the store away is not
   * retried here (the next reconnect compares with the store).
   */
  private async take(batch: string[]): Promise<void> {
    let found: Map<string, StoredCert>;
    try {
      found = await this.o.store.loadCerts(batch);
    } catch (err) {
      if (batch.length > 1 && !(err instanceof StoreUnavailableError)) {
        for (const id of batch) await this.take([id]);
        return;
      }
      this.o.log.warn({ cert: batch[0], err: (err as Error).message }, 'could not take another replica\'s change (the next reconnect compares with the store)');
      return;
    }
    const gone = batch.filter((id) => !found.has(id));
    for (const cert of found.values()) this.catalog?.catalog.put(cert.meta);
    for (const id of gone) this.catalog?.catalog.delete(id);
    this.service?.redeploy([...found.values()], gone).catch((err: Error) => this.o.log.warn({ certs: batch.length, err: err.message }, 'could not deploy other replicas\' changes'));
  }

  /** After notifications were lost (a reconnect): every certificate whose stored version differs from ours is taken again. */
  private async resync(): Promise<void> {
    try {
      const stored = new Map((await this.o.store.listCerts()).map((m) => [m.id, m.fingerprint]));
      const ours = await this.catalog!.listCerts();
      const changed = [...stored].filter(([id, fp]) => this.catalog!.catalog.get(id)?.fingerprint !== fp).map(([id]) => id);
      const gone = ours.filter((m) => !stored.has(m.id)).map((m) => m.id);
      await this.changed([...changed, ...gone]);
      if (changed.length + gone.length > 0) this.o.log.info({ changed: changed.length, gone: gone.length }, 'took the changes made while the notifications were away');
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'could not compare with the store after a reconnect');
    }
  }

  /** Announcements in messages under PostgreSQL's payload limit. */
  private announce(instance: string, versions: WorkVersions): void {
    let batch: (readonly [string, string])[] = [];
    let bytes = 0;
    const flush = () => {
      if (batch.length > 0) this.publish('certd_served', { instance, versions: batch });
      batch = [];
      bytes = 0;
    };
    for (const v of versions) {
      const size = JSON.stringify(v).length + 1;
      if (bytes + size > MAX_PAYLOAD_BYTES - 200) flush();
      batch.push(v);
      bytes += size;
    }
    flush();
  }

  private publish(channel: 'certd_served' | 'certd_maps', payload: Record<string, unknown>): void {
    this.o.store.publish(channel, payload).catch((err: Error) => this.o.log.warn({ channel, err: err.message }, 'could not tell the other replicas (they compare with the store at their next reconnect)'));
  }
}

/** The fields a ReplicaView copies from a registry row (or this replica's own beat). */
function pick(r: { id: string; host: string; pid: number; api: string; version: string; owns: { instance: string; token: string }[]; clusterWork?: string; upSince: string | Date; heartbeatAt?: string }) {
  return {
    id: r.id,
    host: r.host,
    pid: r.pid,
    api: r.api,
    version: r.version,
    owns: r.owns,
    ...(r.clusterWork ? { clusterWork: r.clusterWork } : {}),
    upSince: typeof r.upSince === 'string' ? r.upSince : r.upSince.toISOString(),
    heartbeatAt: r.heartbeatAt ?? '',
  };
}
