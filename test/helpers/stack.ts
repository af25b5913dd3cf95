import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromObject } from '../../src/config/load.js';
import type { Config, ConfigInput } from '../../src/config/schema.js';
import { silentLogger } from '../../src/core/log.js';
import { Daemon, type DaemonOptions } from '../../src/daemon/daemon.js';
import { onDemandSnippetOptions } from '../../src/daemon/haproxy-snippets.js';
import { EMBEDDED_ISSUER } from '../../src/daemon/issuers.js';
import { demoHaproxyConfig } from '../../src/haproxy/assets/config.js';
import { ManagedHaproxy } from '../../src/haproxy/managed/managed-haproxy.js';
import { LocalCaIssuer } from '../../src/issuers/local-ca/index.js';
import { freePort } from './ports.js';
import { TrackedHaproxy } from './children.js';

export { freePort } from './ports.js';
export { handshake } from './tls.js';

/** A daemon and one real HAProxy wired as in production, in a temp dir, loopback only. */
export interface Stack {
  dir: string;
  config: Config;
  daemon: Daemon;
  haproxy: ManagedHaproxy;
  tlsPort: number;
  haproxyConfigFile: string;
  rootPem(): Promise<string>;
  /** Starts a new daemon on the same config (after `daemon.stop()` or a crash test). */
  restartDaemon(): Promise<Daemon>;
  stop(): Promise<void>;
}

export interface StackHaproxyOptions {
  /** Also answer ACME HTTP-01 from acme.map on 127.0.0.1:<port> (Pebble's httpPort). */
  acmeHttpPort?: number;
  /** Give the daemon the instance's master socket (enables the reload fallback). */
  master?: boolean;
  /** More instances in the daemon's list (e.g. a runtime address that never answers). */
  moreInstances?: { name: string; runtime: string }[];
  /** haproxy.reconcileEvery, e.g. "1s" (default: the config's default). */
  reconcileEvery?: string;
}

export async function startStack(extra: Partial<ConfigInput> = {}, opts: Partial<DaemonOptions> = {}, h: StackHaproxyOptions = {}): Promise<Stack> {
  const dir = await mkdtemp(join(tmpdir(), 'certd-stack-'));
  const apiPort = await freePort();
  const adminSocket = join(dir, 'admin.sock');
  const config = configFromObject(
    {
      dataDir: './data',
      haproxy: {
        instances: [{ runtime: `unix:${adminSocket}`, name: 'h1', ...(h.master ? { master: `unix:${join(dir, 'master.sock')}` } : {}) }, ...(h.moreInstances ?? [])],
        certDir: './certs',
        ...(h.reconcileEvery ? { reconcileEvery: h.reconcileEvery } : {}),
      },
      api: { listen: `127.0.0.1:${apiPort}` },
      ...extra,
    },
    dir,
  );
  const startDaemon = () => Daemon.start(config, { log: silentLogger, pollMs: 200, ...opts });
  let daemon = await startDaemon();
  const haproxyConfigFile = join(dir, 'haproxy.cfg');
  const acmeHttp = h.acmeHttpPort ? { bind: `127.0.0.1:${h.acmeHttpPort}`, acmeMap: daemon.deployer.mapPath('acme') } : undefined;
  const writeConfig = (port: number) => {
    const bind = `127.0.0.1:${port}`;
    const onDemand = onDemandSnippetOptions(config, daemon.token, bind);
    return writeFile(haproxyConfigFile, demoHaproxyConfig({ adminSocket, crtList: config.haproxy.crtList, bind, onDemand, acmeHttp }));
  };
  const haproxy = new TrackedHaproxy({ configFile: haproxyConfigFile, masterSocket: join(dir, 'master.sock'), runtimeSocket: adminSocket });
  let tlsPort: number;
  try {
    tlsPort = await startOnFreePort(haproxy, writeConfig);
  } catch (err) {
    // A daemon left running would keep the test file alive until its timeout.
    await daemon.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const stack: Stack = {
    dir,
    config,
    get daemon() {
      return daemon;
    },
    haproxy,
    tlsPort,
    haproxyConfigFile,
    rootPem: async () => (await new LocalCaIssuer(daemon.store, { id: EMBEDDED_ISSUER }).ca()).rootPem,
    restartDaemon: async () => (daemon = await startDaemon()),
    stop: async () => {
      await haproxy.stop().catch(() => undefined);
      await daemon.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return stack;
}

/**
 * Starts HAProxy on a port the kernel just handed out. Between picking and binding, another
 * process may take it (parallel tests, a benchmark): then pick again, a few times.
 */
export async function startOnFreePort(haproxy: ManagedHaproxy, writeConfig: (port: number) => Promise<void>): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    await writeConfig(port);
    try {
      await haproxy.start();
      return port;
    } catch (err) {
      if (attempt >= 5 || !/Address already in use/.test((err as Error).message)) throw err;
    }
  }
}

/** Retries `check` until it returns true or `ms` pass; returns the elapsed time or throws. */
export async function eventually(check: () => Promise<boolean>, ms: number, what: string): Promise<number> {
  const started = Date.now();
  for (;;) {
    try {
      if (await check()) return Date.now() - started;
    } catch {
      /* not yet */
    }
    if (Date.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
