import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CertBundle } from '../../src/core/bundle.js';
import { demoHaproxyConfig } from '../../src/haproxy/assets/config.js';
import { DEFAULT_CERT_ID, makeDeployEntry, type DeployEntry } from '../../src/haproxy/deploy/entry.js';
import { DeployFiles } from '../../src/haproxy/deploy/files.js';
import { ManagedHaproxy } from '../../src/haproxy/managed/managed-haproxy.js';
import { freePort } from '../../test/helpers/ports.js';

/** A real HAProxy for one measurement: its own temp dir, loopback TLS port, admin socket. */
export interface BenchHaproxy {
  dir: string;
  /** Where PEMs and the crt-list live; entry paths (and runtime cert names) are under it. */
  certDir: string;
  crtList: string;
  /** `unix:<dir>/admin.sock`, level admin. */
  runtime: string;
  tlsPort: number;
  haproxy: ManagedHaproxy;
  /** The crt-list's first line, as the daemon writes it. */
  defaultEntry: DeployEntry;
  files: DeployFiles;
  /** VmRSS of the current worker, in KiB. */
  workerRssKb(): Promise<number>;
  /** Stops HAProxy and removes the temp dir. */
  stop(): Promise<void>;
}

/** A reload with 10,000 certificates parses every PEM again: allow far more than the default 15 s. */
const START_TIMEOUT_MS = 180_000;

/**
 * Starts `haproxy -W` with the demo config (admin stats socket + one `bind 127.0.0.1:<free> ssl
 * crt-list` frontend), after writing the default certificate and a one-line crt-list the way the
 * deployer does, so a Deployer started on it finds its own files.
 */
export async function startBenchHaproxy(defaultBundle: CertBundle): Promise<BenchHaproxy> {
  const dir = await mkdtemp(join(tmpdir(), 'certd-bench-'));
  const certDir = join(dir, 'certs');
  const crtList = join(certDir, 'crt-list.txt');
  const files = new DeployFiles(certDir, crtList);
  const defaultEntry = makeDeployEntry(certDir, { id: DEFAULT_CERT_ID, bundle: defaultBundle, sni: [] });
  await files.prepare();
  await files.writeEntries([defaultEntry]);
  await files.writeCrtList([defaultEntry]);
  const plain = await startIn(dir, crtList, START_TIMEOUT_MS);
  return {
    ...plain,
    dir,
    certDir,
    crtList,
    defaultEntry,
    files,
    async workerRssKb() {
      const status = await readFile(`/proc/${await plain.haproxy.workerPid()}/status`, 'utf8');
      return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? Number.NaN);
    },
  };
}

/** A plain HAProxy reading a crt-list someone else writes (no SNI hop, no Lua). */
export interface PlainHaproxy {
  haproxy: ManagedHaproxy;
  tlsPort: number;
  /** `unix:<dir>/admin.sock`. */
  runtime: string;
  stop(): Promise<void>;
}

/**
 * Starts `haproxy -W` with the demo config's plain TLS frontend (`bind 127.0.0.1:<free> ssl
 * crt-list <crtList>`) on an existing crt-list, e.g. the one a daemon writes: what HAProxy does
 * with the same certificates and no SNI hop, or how long a start from files takes. Resolves once
 * the worker answers; its temp dir holds only the config and sockets.
 */
export async function startPlainHaproxy(crtList: string, o: { startTimeoutMs?: number } = {}): Promise<PlainHaproxy> {
  return startIn(await mkdtemp(join(tmpdir(), 'certd-bench-plain-')), crtList, o.startTimeoutMs ?? START_TIMEOUT_MS);
}

/** Starts the demo config in `dir` (config and sockets there) on `crtList`; `stop()` removes `dir`. */
export function startIn(dir: string, crtList: string, startTimeoutMs = START_TIMEOUT_MS): Promise<PlainHaproxy> {
  return startConfigIn(dir, ({ adminSocket, tlsPort }) => demoHaproxyConfig({ adminSocket, crtList, bind: `127.0.0.1:${tlsPort}` }), startTimeoutMs);
}

/**
 * Starts `haproxy -W` in `dir` with the config `render` makes for its admin socket and a free
 * loopback TLS port; resolves once the worker answers. `stop()` (and a failed start) removes `dir`.
 */
export async function startConfigIn(dir: string, render: (at: { adminSocket: string; tlsPort: number }) => string, startTimeoutMs = START_TIMEOUT_MS): Promise<PlainHaproxy> {
  const adminSocket = join(dir, 'admin.sock');
  const tlsPort = await freePort();
  const haproxy = new ManagedHaproxy({
    configFile: join(dir, 'haproxy.cfg'),
    configText: render({ adminSocket, tlsPort }),
    masterSocket: join(dir, 'master.sock'),
    runtimeSocket: adminSocket,
    startTimeoutMs,
  });
  try {
    await haproxy.start();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    haproxy,
    tlsPort,
    runtime: `unix:${adminSocket}`,
    async stop() {
      await haproxy.stop().catch(() => haproxy.kill());
      await rm(dir, { recursive: true, force: true });
    },
  };
}
