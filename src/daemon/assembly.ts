import type { Logger } from 'pino';
import { readFile, stat } from 'node:fs/promises';
import { MapHttp01Solver } from '../challenges/http-01/map-solver.js';
import type { Config } from '../config/schema.js';
import { ConfigError, errorCode } from '../core/errors.js';
import { HOW_TO_MAKE_KEY_FILE, KeyRing } from '../crypto/secret-box.js';
import { Deployer, type ReplicaHooks } from '../haproxy/deploy/deployer.js';
import { DEFAULT_CERT_ID, makeDeployEntry } from '../haproxy/deploy/entry.js';
import type { DeployMetrics } from '../haproxy/deploy/metrics.js';
import type { Issuer } from '../issuers/issuer.js';
import type { OrderLimit } from '../renew/order-budget.js';
import { CertService } from '../service/cert-service.js';
import type { ServiceMetrics } from '../service/metrics.js';
import { RenewalRules, type BackoffRules } from '../service/renewal-rules.js';
import { FsStore } from '../store/fs/fs-store.js';
import { PgStore, tlsFor } from '../store/postgres/pg-store.js';
import type { Store } from '../store/store.js';
import { loadOrCreateDefaultCert } from './default-cert.js';
import { createIssuers, defaultIssuerId } from './issuers.js';
import { policiesFromConfig } from './policies.js';

/** Opens the configured store (a postgres one connected and its schema migrated, or the start fails naming why). */
export async function openStore(config: Config, log: Logger): Promise<Store> {
  const spec = config.store;
  if (spec.type === 'fs') return FsStore.open(config.dataDir, { onWarning: (err) => log.warn({ err: err.message }, 'store warning') });
  return PgStore.open({
    url: spec.url,
    password: spec.passwordFile === undefined ? spec.password : (await readStoreFile(spec.passwordFile, 'store.passwordFile')).replace(/\r?\n$/, ''),
    ssl: tlsFor(spec.sslmode, spec.ca === undefined ? undefined : await readStoreFile(spec.ca, 'store.ca')),
    keys: await readKeyRing(spec.keyFile, log),
    maxConnections: spec.poolSize,
    connectTimeoutMs: spec.connectTimeout,
    queryTimeoutMs: spec.queryTimeout,
    daemonLeaseMs: spec.lease,
    // Loud: the database away means no new issuance; HAProxy keeps serving what it has.
    onWarning: (err) => log.error({ code: errorCode(err), err: err.message }, 'store warning'),
    onRecovered: (message) => log.warn(message),
  });
}

/** The key file, refused when missing (saying how to make one); a copy others can read is a warning. */
async function readKeyRing(path: string, log: Logger): Promise<KeyRing> {
  const text = await readStoreFile(path, 'store.keyFile', HOW_TO_MAKE_KEY_FILE);
  const { mode } = await stat(path);
  if ((mode & 0o077) !== 0) log.warn({ keyFile: path, mode: (mode & 0o777).toString(8) }, 'store.keyFile is readable by other users: chmod 600 it');
  return KeyRing.parse(text, `store.keyFile ${path}`);
}

/** A file the store config names; `whenMissing` is added to the error when it does not exist. */
async function readStoreFile(path: string, key: string, whenMissing?: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' && whenMissing ? `: ${whenMissing}` : '';
    throw new ConfigError(`${key} ${path} cannot be read (${code ?? (err as Error).message})${hint}`, { cause: err });
  }
}

/** The deployer's settings that are not in the config (tests shorten them). */
export interface DeployTuning {
  /** Restart-detection poll interval per instance (default 1 s). */
  pollMs?: number;
  /** Least time between two fallback reloads of one instance (default 30 s). */
  reloadMinIntervalMs?: number;
  /** Active-active replicas: instances are written to only while owned (see Replicas). */
  replicas?: ReplicaHooks;
}

export interface AssemblyOptions {
  log: Logger;
  metrics?: ServiceMetrics & DeployMetrics;
  /** Renewal retry backoff (default 1 min doubling to 6 h). */
  renewBackoff?: BackoffRules;
  /** Build the deployer too (the daemon); without it the service acts on the store alone (the CLI with no daemon up). */
  deploy?: DeployTuning;
}

/** What a certificate flow needs, built from one loaded config. */
export interface Assembly {
  store: Store;
  issuers: ReadonlyMap<string, Issuer>;
  rules: RenewalRules;
  /** Each ACME issuer's budget of new orders (its rateLimit), for the renewal scheduler. */
  orderLimits: ReadonlyMap<string, OrderLimit>;
  service: CertService;
}

/** With a deployer: HTTP-01 tokens are published through HAProxy's acme.map. */
export interface DeployingAssembly extends Assembly {
  deployer: Deployer;
  http01: MapHttp01Solver;
}

/**
 * The one assembly of store, issuers, deployer, renewal rules and CertService from a config, for
 * the daemon (`deploy` given) and for the CLI acting on the store alone. The store is opened (and,
 * by the daemon, claimed) by the caller first: issuers and the default certificate write to it.
 */
export async function assemble(config: Config, store: Store, o: AssemblyOptions & { deploy: DeployTuning }): Promise<DeployingAssembly>;
export async function assemble(config: Config, store: Store, o: AssemblyOptions): Promise<Assembly | DeployingAssembly>;
export async function assemble(config: Config, store: Store, o: AssemblyOptions): Promise<Assembly | DeployingAssembly> {
  const { certDir } = config.haproxy;
  const deploying = o.deploy ? await deployerFor(config, store, o, o.deploy) : undefined;
  const issuers = await createIssuers(config, store, deploying?.http01);
  const rules = new RenewalRules({ issuerIds: issuers.keys(), renewBeforeMs: config.renewBefore, backoff: o.renewBackoff });
  const service = new CertService({
    store,
    issuers,
    defaultIssuer: defaultIssuerId(issuers),
    deployer: deploying?.deployer,
    certDir,
    log: o.log,
    metrics: o.metrics,
    policies: await policiesFromConfig(config),
    rules,
  });
  return { store, issuers, rules, orderLimits: orderLimitsOf(config), service, ...deploying };
}

async function deployerFor(config: Config, store: Store, o: AssemblyOptions, tuning: DeployTuning): Promise<{ deployer: Deployer; http01: MapHttp01Solver }> {
  const { certDir, crtList, instances, reconcileEvery } = config.haproxy;
  const deployer = new Deployer({
    certDir,
    crtList,
    instances,
    defaultEntry: makeDeployEntry(certDir, { id: DEFAULT_CERT_ID, bundle: await loadOrCreateDefaultCert(store), sni: [] }),
    log: o.log,
    metrics: o.metrics,
    pollMs: tuning.pollMs,
    reconcileEveryMs: reconcileEvery,
    reloadMinIntervalMs: tuning.reloadMinIntervalMs,
    replicas: tuning.replicas,
  });
  return { deployer, http01: new MapHttp01Solver(deployer) };
}

function orderLimitsOf(config: Config): Map<string, OrderLimit> {
  const limits = new Map<string, OrderLimit>();
  for (const [id, spec] of Object.entries(config.issuers)) {
    if (spec.type === 'acme') limits.set(id, { orders: spec.rateLimit.orders, perMs: spec.rateLimit.per, ariExempt: spec.rateLimit.ariExempt });
  }
  return limits;
}
