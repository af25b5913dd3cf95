import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { certId } from '../core/names.js';
import { VERSION } from '../core/version.js';
import { createApi, listenApi, type RunningApi } from '../api/server.js';
import { Metrics } from '../api/metrics.js';
import type { Deployer } from '../haproxy/deploy/deployer.js';
import { DeployFiles } from '../haproxy/deploy/files.js';
import { DnsDiscovery } from '../haproxy/discovery/dns.js';
import type { Forge } from '../ondemand/forge.js';
import { OnDemand } from '../ondemand/ondemand.js';
import { RenewalScheduler } from '../renew/scheduler.js';
import type { CertService } from '../service/cert-service.js';
import type { BackoffRules } from '../service/renewal-rules.js';
import { createSources, ServiceSink, type CertSource } from '../sources/index.js';
import { PgStore } from '../store/postgres/pg-store.js';
import type { Store } from '../store/store.js';
import { CatalogStore } from '../store/catalog.js';
import { assemble, openStore, type DeployTuning } from './assembly.js';
import { OwnerForward } from '../ondemand/forward.js';
import { Replicas, type SingletonWork } from './replicas.js';
import type { ClusterStatus } from '../api/status-view.js';
import { startForge } from './forge.js';
import { logRuntimeEvents } from './runtime-log.js';
import { loadOrCreateToken, onDemandToken } from './token.js';

/** The deployer's test tunings; `replicas` (the ownership hooks) is the daemon's own to give. */
export interface DaemonOptions extends Omit<DeployTuning, 'replicas'> {
  log: Logger;
  /** Renewal retry backoff (default 1 min doubling to 6 h). */
  renewBackoff?: BackoffRules;
  /** Longest sleep between renewal passes (default 1 min). */
  renewMaxSleepMs?: number;
  /** Told when the running daemon had to stop on its own (its store claim was lost): exit. */
  onFatal?: (err: Error) => void;
}

/** What a started daemon runs, each part built once by `Daemon.start`. */
interface DaemonParts {
  config: Config;
  store: Store;
  service: CertService;
  deployer: Deployer;
  scheduler: RenewalScheduler;
  metrics: Metrics;
  api: RunningApi;
  token: string;
  log: Logger;
  discovery?: DnsDiscovery;
  /** The cluster-wide work: sources, configured certificates, renewals (on one replica when several share the store). */
  work: SingletonWork;
  replicas?: Replicas;
  onDemand?: OnDemand;
  forge?: Forge;
  stopRuntimeLog: () => void;
}

/**
 * The running daemon: the assembly (store, issuers, deployer, CertService) plus the API, the
 * renewal scheduler, sources, on-demand and discovery. See `start` for the order.
 */
export class Daemon {
  readonly config: Config;
  readonly store: Store;
  readonly service: CertService;
  readonly deployer: Deployer;
  readonly scheduler: RenewalScheduler;
  readonly metrics: Metrics;
  readonly api: RunningApi;
  readonly token: string;
  /** onDemand.forge: HAProxy's intermediate and its rotation. */
  readonly forge?: Forge;
  private readonly p: DaemonParts;
  private stopping: Promise<void> | undefined;

  private constructor(p: DaemonParts) {
    this.p = p;
    this.config = p.config;
    this.store = p.store;
    this.service = p.service;
    this.deployer = p.deployer;
    this.scheduler = p.scheduler;
    this.metrics = p.metrics;
    this.api = p.api;
    this.token = p.token;
    this.forge = p.forge;
  }

  /**
   * Starts everything or nothing: the store claim (one daemon per store) and the API port come
   * first, before any HAProxy hears from this process; a step that fails undoes the ones before
   * it and the error is thrown (the caller exits). `o.onFatal` is told if the store claim is lost
   * later: the daemon has then stopped writing and the process must exit.
   */
  static async start(config: Config, o: DaemonOptions): Promise<Daemon> {
    const undo: (() => Promise<unknown> | void)[] = [];
    try {
      return await Daemon.startSteps(config, o, undo);
    } catch (err) {
      for (const step of undo.reverse()) await Promise.resolve(step()).catch((e: Error) => o.log.warn({ err: e.message }, 'clean-up after a failed start'));
      throw err;
    }
  }

  private static async startSteps(config: Config, o: DaemonOptions, undo: (() => Promise<unknown> | void)[]): Promise<Daemon> {
    const { log } = o;
    const opened = await openStore(config, log);
    undo.push(() => opened.close());
    let daemon: Daemon | undefined;
    const lost = (err: Error) => {
      log.fatal({ err: err.message }, 'the store claim is lost (another daemon may take over): stopping at once');
      // Fencing: the instances stop taking work now; the rest of the stop follows.
      void daemon?.deployer.stop();
      void (daemon ? daemon.stop() : Promise.resolve()).finally(() => o.onFatal?.(err));
    };
    // A shared (postgres) store has one active daemon: the others stand by here, before the API
    // port and any HAProxy, until the active one's lease runs out. The fs store refuses a second.
    const shared = opened instanceof PgStore ? opened : undefined;
    const replicas = shared && config.store.type === 'postgres' && config.store.replicas === 'active-active' ? new Replicas({ store: shared, log, leaseMs: config.store.lease }) : undefined;
    if (replicas) {
      log.info({ replica: replicas.id }, 'active-active: this daemon is one of the replicas sharing the store');
    } else if (shared) {
      const tookOver = await shared.claimWhenFree(lost, {
        onStandby: (h) =>
          log.warn({ holder: `pid ${h.pid} on host ${h.host}`, leaseUntil: h.expiresAt.toISOString() }, `standing by: the store is claimed by the active daemon (pid ${h.pid} on host ${h.host}); taking over when its lease runs out`),
      });
      if (tookOver) log.warn('the active daemon\'s lease ran out: this daemon takes over the store');
    } else {
      await opened.claimForDaemon(lost);
    }
    // Metadata in memory from here on: listing, counting and planning read no store records.
    const store = await CatalogStore.open(opened);
    const api = await listenApi(config.api.listen);
    undo.push(() => api.close());
    const token = await loadOrCreateToken(config.dataDir, config.api.token);
    const metrics = new Metrics();
    const { certDir, crtList } = config.haproxy;
    const { service, deployer, http01, issuers, rules, orderLimits } = await assemble(config, store, { log, metrics, renewBackoff: o.renewBackoff, deploy: { pollMs: o.pollMs, reloadMinIntervalMs: o.reloadMinIntervalMs, replicas: replicas?.hooks } });
    // DNS-01 records a crash left behind are removed at start (never throws; the daemon's path only).
    for (const issuer of issuers.values()) void issuer.removeLeftovers?.();
    // The API answers reads from the catalog from here on (seconds after start even at 100,000
    // certificates); writes wait for `ready`, after every stored certificate is deployed.
    let ready = false;
    let scheduler: RenewalScheduler | undefined;
    const storeHealth = shared ? () => shared.health() : undefined;
    // Replicas (active-active) and the shared store's health, for status, the page and metrics.
    const cluster = shared ? (): ClusterStatus => replicas?.view() ?? { store: { type: 'postgres', ...shared.healthDetail() } } : undefined;
    const app = createApi({
      service,
      deployer,
      metrics,
      token,
      log,
      acmeAnswer: (t) => http01.answer(t),
      renewals: () => scheduler?.dueTimes(),
      storeHealth,
      cluster,
      writable: () => ready,
    });
    api.serve(app);
    // HAProxy lua-loads this at start, so it is written before any instance is expected up.
    await new DeployFiles(certDir, crtList).writeLuaAction();
    const forge = await startForge(config, issuers, log, (reason) => deployer.reloadFromFiles(reason));
    undo.push(() => forge?.stop());
    const stopRuntimeLog = logRuntimeEvents(log.child({ component: 'haproxy-runtime' }));
    undo.push(stopRuntimeLog);
    undo.push(() => deployer.stop());
    // Configured certificates are the ones operators named: an instance catching up gets them first.
    const configured = (await store.listCerts()).filter((m) => m.origin === 'config').map((m) => m.id);
    await deployer.start(service.streamDeployEntries(), { priority: configured });
    const onDemand = config.onDemand
      ? { handler: await OnDemand.create({ spec: config.onDemand, service, deployer, store, metrics, log, forward: replicas && !config.onDemand.forge ? new OwnerForward({ owner: () => replicas.onDemandOwner(), token: onDemandToken(token), log }) : undefined }), token: onDemandToken(token) }
      : undefined;
    undo.push(() => onDemand?.handler.close());
    const discovery = config.haproxy.discover
      ? new DnsDiscovery({ ...config.haproxy.discover, everyMs: config.haproxy.discover.every, log, onChange: (found) => deployer.setDiscovered(found) })
      : undefined;
    undo.push(() => discovery?.stop());
    await discovery?.start();
    scheduler = new RenewalScheduler({ store, catalog: store.catalog, service, issuers, rules, orderLimits, log, metrics, maxSleepMs: o.renewMaxSleepMs });
    const work = clusterWork(config, service, scheduler, log);
    undo.push(() => work.stop());
    metrics.attach({ deployer, scheduler, cluster, runsClusterWork: replicas ? () => replicas.runsClusterWork() : undefined });
    api.serve(app, onDemand);
    ready = true;
    daemon = new Daemon({ config, store, service, deployer, scheduler, metrics, api, token, log, discovery, work, replicas, onDemand: onDemand?.handler, forge, stopRuntimeLog });
    if (replicas) {
      // Instances and the cluster-wide work are taken as their leases are free (at once when they are).
      undo.push(() => replicas.stop());
      await replicas.start({ deployer, service, catalog: store, work, api: api.url });
    } else {
      work.start();
    }
    log.info({ version: VERSION, api: api.url, instances: config.haproxy.instances.length, certDir }, 'daemon started');
    return daemon;
  }

  /** Stops everything, waiting for the writes left behind; safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  private async stopAll(): Promise<void> {
    const { p } = this;
    // With replicas, the cluster-wide work is theirs to stop (it runs only while their lease is held).
    if (p.replicas) await p.replicas.stop();
    else await p.work.stop();
    p.discovery?.stop();
    await p.api.close();
    p.onDemand?.close();
    p.forge?.stop();
    await p.deployer.stop();
    await p.service.drain();
    await p.store.close();
    p.stopRuntimeLog();
    p.log.info('daemon stopped');
  }
}

/**
 * Sources, then interrupted issues and the configured certificates, then renewals: started on the
 * one daemon (or the replica holding the cluster-wide lease), stopped when it loses it. A restart
 * builds the sources anew.
 */
function clusterWork(config: Config, service: CertService, scheduler: RenewalScheduler, log: Logger): SingletonWork {
  let sources: CertSource[] = [];
  let generation = 0;
  const sink = new ServiceSink(service, log.child({ component: 'sources' }));
  const run = async (mine: number) => {
    sources = await createSources(config.sources);
    // Not awaited: a slow HTTP source must not hold up the rest.
    for (const source of sources) void source.start(sink).catch((err: Error) => log.error({ source: source.name, err: err.message }, 'source failed to start'));
    await service.finishPending();
    for (const spec of config.certificates) {
      if (mine !== generation) return;
      try {
        await service.ensure(spec.names, { issuer: spec.issuer, origin: 'config' });
      } catch (err) {
        log.error({ cert: certId(spec.names[0]!), err: (err as Error).message }, 'configured certificate not issued');
      }
    }
    if (mine === generation) scheduler.start();
  };
  return {
    start() {
      const mine = ++generation;
      void run(mine).catch((err: Error) => log.error({ err: err.message }, 'the cluster-wide work could not start; it is tried again when this daemon takes it next'));
    },
    async stop() {
      // An ensure in flight finishes on its own (as before a stop); nothing after it starts.
      generation++;
      await scheduler.stop();
      await Promise.all(sources.splice(0).map((s) => s.stop()));
    },
  };
}
