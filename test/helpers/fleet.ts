import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromObject } from '../../src/config/load.js';
import type { Config, ConfigInput } from '../../src/config/schema.js';
import { silentLogger } from '../../src/core/log.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { EMBEDDED_ISSUER } from '../../src/daemon/issuers.js';
import { demoHaproxyConfig } from '../../src/haproxy/assets/config.js';
import { ManagedHaproxy } from '../../src/haproxy/managed/managed-haproxy.js';
import { LocalCaIssuer } from '../../src/issuers/local-ca/index.js';
import { freePort } from './ports.js';
import { startOnFreePort } from './stack.js';
import { TrackedHaproxy } from './children.js';

export interface FleetMember {
  name: string;
  haproxy: ManagedHaproxy;
  tlsPort: number;
  adminSocket: string;
  /** `ip:port` of its TCP runtime socket, when it has one. */
  runtimeTcp?: string;
}

export interface Fleet {
  dir: string;
  config: Config;
  daemon: Daemon;
  members: FleetMember[];
  rootPem(): Promise<string>;
  /** Starts one more HAProxy reading the shared crt-list (not known to the daemon unless discovered). */
  addMember(name: string, runtimeTcp?: string): Promise<FleetMember>;
  stop(): Promise<void>;
}

/**
 * One daemon and several real HAProxy processes on loopback that read the same certDir and
 * crt-list (as instances on one host, or hosts sharing a volume, do). `listed` members are in
 * the daemon's static instance list; others are for discovery tests.
 */
export async function startFleet(o: { listed: number; extra?: Partial<ConfigInput>; pollMs?: number }): Promise<Fleet> {
  const dir = await mkdtemp(join(tmpdir(), 'certd-fleet-'));
  const apiPort = await freePort();
  const names = Array.from({ length: o.listed }, (_, i) => `h${i + 1}`);
  const config = configFromObject(
    {
      dataDir: './data',
      haproxy: { instances: names.map((n) => ({ runtime: `unix:${join(dir, `${n}.sock`)}`, name: n })), certDir: './certs' },
      api: { listen: `127.0.0.1:${apiPort}` },
      ...o.extra,
    },
    dir,
  );
  const daemon = await Daemon.start(config, { log: silentLogger, pollMs: o.pollMs ?? 200 });
  const members: FleetMember[] = [];
  const addMember = async (name: string, runtimeTcp?: string) => {
    const adminSocket = join(dir, `${name}.sock`);
    const configFile = join(dir, `${name}.cfg`);
    const haproxy = new TrackedHaproxy({ configFile, masterSocket: join(dir, `${name}.master`), runtimeSocket: adminSocket });
    const tlsPort = await startOnFreePort(haproxy, (port) =>
      writeFile(configFile, demoHaproxyConfig({ adminSocket, crtList: config.haproxy.crtList, bind: `127.0.0.1:${port}`, runtimeTcp })),
    );
    const member = { name, haproxy, tlsPort, adminSocket, runtimeTcp };
    members.push(member);
    return member;
  };
  for (const name of names) await addMember(name);
  return {
    dir,
    config,
    daemon,
    members,
    rootPem: async () => (await new LocalCaIssuer(daemon.store, { id: EMBEDDED_ISSUER }).ca()).rootPem,
    addMember,
    stop: async () => {
      await Promise.all(members.map((m) => m.haproxy.stop().catch(() => undefined)));
      await daemon.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
