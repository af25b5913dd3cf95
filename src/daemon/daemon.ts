import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { ConfigError } from '../core/errors.js';
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
}

/** Opens the configured store. */
export async function openStore(config: Config, log: Logger): Promise<Store> {
  if (config.store.type !== 'fs') throw new ConfigError('store.type postgres is not available in this build yet; use type: fs');
  return FsStore.open(config.dataDir, { onWarning: (err) => log.warn({ err: err.message }, 'store warning') });
}

/**
 * The running daemon: store, issuers, deployer and API wired together. Start order: files and
 * crt-list first (so an HAProxy can start), then instance workers, then the API, then the work
 * left from config and from an interrupted previous run.
 */
export class Daemon {
  readonly scheduler: RenewalScheduler;

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
  }

  static async start(config: Config, o: DaemonOptions): Promise<Daemon> {
    const { log } = o;
    const store = await openStore(config, log);
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
    await deployer.start(await service.deployEntries());
    const sink = new ServiceSink(service, log.child({ component: 'sources' }));
    // Not awaited: a slow HTTP source must not hold up the daemon's start.
    for (const source of sources) void source.start(sink).catch((err: Error) => log.error({ source: source.name, err: err.message }, 'source failed to start'));
    const token = await loadOrCreateToken(config.dataDir, config.api.token);
    const onDemand = config.onDemand
      ? { handler: await OnDemand.create({ spec: config.onDemand, service, deployer, store, metrics, log }), token: onDemandToken(token) }
      : undefined;
    const api = await listenApi(createApi({ service, deployer, metrics, token, log, acmeAnswer: (t) => http01.answer(t) }), config.api.listen, onDemand);
    const discovery = config.haproxy.discover
      ? new DnsDiscovery({ ...config.haproxy.discover, everyMs: config.haproxy.discover.every, log, onChange: (found) => deployer.setDiscovered(found) })
      : undefined;
    await discovery?.start();
    const daemon = new Daemon(config, store, service, deployer, metrics, api, token, log, discovery, issuers, o, sources, onDemand?.handler);
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

  async stop(): Promise<void> {
    await this.scheduler.stop();
    this.discovery?.stop();
    await Promise.all(this.sources.map((s) => s.stop()));
    await this.api.close();
    this.onDemand?.close();
    await this.deployer.stop();
    await this.service.drain();
    await this.store.close();
    this.log.info('daemon stopped');
  }
}
