import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { certId } from '../core/names.js';
import { createApi, listenApi, type RunningApi } from '../api/server.js';
import { Metrics } from '../api/metrics.js';
import { Deployer } from '../haproxy/deploy/deployer.js';
import { DEFAULT_CERT_ID, makeDeployEntry } from '../haproxy/deploy/entry.js';
import { CertService } from '../service/cert-service.js';
import { FsStore } from '../store/fs/fs-store.js';
import type { Store } from '../store/store.js';
import { loadOrCreateDefaultCert } from './default-cert.js';
import { createIssuers, defaultIssuerId } from './issuers.js';
import { policiesFromConfig } from './policies.js';
import { logRuntimeEvents } from './runtime-log.js';
import { loadOrCreateToken, onDemandToken } from './token.js';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ONDEMAND_LUA, ONDEMAND_LUA_FILE } from '../haproxy/assets/ondemand-lua.js';
import { OnDemand } from '../ondemand/ondemand.js';
import { DnsDiscovery } from '../haproxy/discovery/dns.js';
import { MapHttp01Solver } from '../challenges/http-01/map-solver.js';
import type { Issuer } from '../issuers/issuer.js';
import type { BackoffRules } from '../renew/plan.js';
import { RenewalScheduler } from '../renew/scheduler.js';
import { createSources, ServiceSink, type CertSource } from '../sources/index.js';
import { writeFileAtomic } from '../store/fs/atomic-write.js';
import { VERSION } from '../core/version.js';

export interface DaemonOptions {
  log: Logger;
  /** Restart-detection poll interval per instance (default 1 s). */
  pollMs?: number;
  /** Renewal retry backoff (default 1 min doubling to 6 h). */
  renewBackoff?: BackoffRules;
  /** Longest sleep between renewal passes (default 1 min). */
  renewMaxSleepMs?: number;
  /** Least time between two fallback reloads of one instance (default 30 s). */
  reloadMinIntervalMs?: number;
  /** Told when the running daemon had to stop on its own (its store claim was lost): exit. */
  onFatal?: (err: Error) => void;
}

/** Opens the configured store. */
export async function openStore(config: Config, log: Logger): Promise<Store> {
  return FsStore.open(config.dataDir, { onWarning: (err) => log.warn({ err: err.message }, 'store warning') });
}

/**
 * The running daemon: store, issuers, deployer and API wired together. Start order: files and
 * crt-list first (so an HAProxy can start), then instance workers, then the API, then the work
 * left from config and from an interrupted previous run.
 */
export class Daemon {
  readonly scheduler: RenewalScheduler;
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly config: Config,
    readonly store: Store,
    readonly service: CertService,
    readonly deployer: Deployer,
    readonly metrics: Metrics,
    readonly api: RunningApi,
    readonly token: string,
    private readonly log: Logger,
    private readonly discovery: DnsDiscovery | undefined,
    issuers: ReadonlyMap<string, Issuer>,
    o: DaemonOptions,
    private readonly sources: CertSource[],
    private readonly onDemand: OnDemand | undefined,
    private readonly stopRuntimeLog: () => void,
  ) {
    this.scheduler = new RenewalScheduler({
      store,
      service,
      issuers,
      log,
      metrics,
      renewBeforeMs: config.renewBefore,
      backoff: o.renewBackoff,
      maxSleepMs: o.renewMaxSleepMs,
    });
    metrics.attach({ deployer, scheduler: this.scheduler });
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
    const store = await openStore(config, log);
    undo.push(() => store.close());
    let daemon: Daemon | undefined;
    await store.claimForDaemon((err) => {
      log.fatal({ err: err.message }, 'another process took over the store: stopping at once');
      void (daemon ? daemon.stop() : Promise.resolve()).finally(() => o.onFatal?.(err));
    });
    const api = await listenApi(config.api.listen);
    undo.push(() => api.close());
    const metrics = new Metrics();
    const certDir = config.haproxy.certDir;
    const defaultEntry = makeDeployEntry(certDir, { id: DEFAULT_CERT_ID, bundle: await loadOrCreateDefaultCert(store), sni: [] });
    const deployer = new Deployer({
      certDir,
      crtList: config.haproxy.crtList,
      instances: config.haproxy.instances,
      defaultEntry,
      log,
      metrics,
      pollMs: o.pollMs,
      reconcileEveryMs: config.haproxy.reconcileEvery,
      reloadMinIntervalMs: o.reloadMinIntervalMs,
    });
    const http01 = new MapHttp01Solver(deployer);
    const issuers = await createIssuers(config, store, http01);
    const service = new CertService({
      store,
      issuers,
      defaultIssuer: defaultIssuerId(issuers),
      deployer,
      certDir,
      log,
      metrics,
      policies: await policiesFromConfig(config),
      renewBeforeMs: config.renewBefore,
    });
    // HAProxy lua-loads this at start, so it is written before any instance is expected up.
    await mkdir(certDir, { recursive: true });
    await writeFileAtomic(join(certDir, ONDEMAND_LUA_FILE), ONDEMAND_LUA, { mode: 0o644 });
    const sources = await createSources(config.sources);
    const stopRuntimeLog = logRuntimeEvents(log.child({ component: 'haproxy-runtime' }));
    undo.push(stopRuntimeLog);
    undo.push(() => deployer.stop());
    await deployer.start(await service.deployEntries());
    const sink = new ServiceSink(service, log.child({ component: 'sources' }));
    // Not awaited: a slow HTTP source must not hold up the daemon's start.
    undo.push(() => Promise.all(sources.map((s) => s.stop())));
    for (const source of sources) void source.start(sink).catch((err: Error) => log.error({ source: source.name, err: err.message }, 'source failed to start'));
    const token = await loadOrCreateToken(config.dataDir, config.api.token);
    const onDemand = config.onDemand
      ? { handler: await OnDemand.create({ spec: config.onDemand, service, deployer, store, metrics, log }), token: onDemandToken(token) }
      : undefined;
    undo.push(() => onDemand?.handler.close());
    const discovery = config.haproxy.discover
      ? new DnsDiscovery({ ...config.haproxy.discover, everyMs: config.haproxy.discover.every, log, onChange: (found) => deployer.setDiscovered(found) })
      : undefined;
    undo.push(() => discovery?.stop());
    await discovery?.start();
    api.serve(createApi({ service, deployer, metrics, token, log, acmeAnswer: (t) => http01.answer(t), renewals: () => daemon?.scheduler.dueTimes() }), onDemand);
    daemon = new Daemon(config, store, service, deployer, metrics, api, token, log, discovery, issuers, o, sources, onDemand?.handler, stopRuntimeLog);
    log.info({ version: VERSION, api: api.url, instances: config.haproxy.instances.length, certDir }, 'daemon started');
    void daemon.catchUp().then(() => daemon.scheduler.start());
    return daemon;
  }

  /** Finishes interrupted issues, then makes sure every configured certificate exists. */
  private async catchUp(): Promise<void> {
    await this.service.finishPending();
    for (const spec of this.config.certificates) {
      try {
        await this.service.ensure(spec.names, { issuer: spec.issuer, origin: 'config' });
      } catch (err) {
        this.log.error({ cert: certId(spec.names[0]!), err: (err as Error).message }, 'configured certificate not issued');
      }
    }
  }

  /** Stops everything, waiting for the writes left behind; safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  private async stopAll(): Promise<void> {
    await this.scheduler.stop();
    this.discovery?.stop();
    await Promise.all(this.sources.map((s) => s.stop()));
    await this.api.close();
    this.onDemand?.close();
    await this.deployer.stop();
    await this.service.drain();
    await this.store.close();
    this.stopRuntimeLog();
    this.log.info('daemon stopped');
  }
}
