import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { demoHaproxyConfig } from '../../src/haproxy/assets/config.js';
import { ONDEMAND_LUA } from '../../src/haproxy/assets/ondemand-lua.js';
import { DEFAULT_CERT_ID, makeDeployEntry } from '../../src/haproxy/deploy/entry.js';
import { DeployFiles } from '../../src/haproxy/deploy/files.js';
import { ManagedHaproxy } from '../../src/haproxy/managed/managed-haproxy.js';
import { LocalCa } from '../../src/issuers/local-ca/ca.js';
import { createRoot } from '../../src/issuers/local-ca/root.js';
import { freePort } from '../../test/helpers/ports.js';

/** HAProxy with certd's on-demand frontends and Lua, in front of the floor endpoint (ondemand-floor-child.ts). */
export interface OnDemandFloor {
  port: number;
  rootPem: string;
  stop(): Promise<void>;
}

/**
 * Starts the floor endpoint in a process of its own, then an HAProxy with exactly the config
 * certd's stack gets (SNI hop, Lua action, crt-list, default certificate), pointed at it.
 */
export async function startOnDemandFloor(askUrl: string): Promise<OnDemandFloor> {
  const dir = await mkdtemp(join(tmpdir(), 'certd-bench-floor-'));
  const certDir = join(dir, 'certs');
  const crtList = join(certDir, 'crt-list.txt');
  const adminSocket = join(dir, 'admin.sock');
  const files = new DeployFiles(certDir, crtList);
  const fallback = await LocalCa.fromRoot(await createRoot()).issueLeaf({ names: ['default.invalid'], validityMs: 86_400_000 });
  const defaultEntry = makeDeployEntry(certDir, { id: DEFAULT_CERT_ID, bundle: fallback, sni: [] });
  await files.prepare();
  await files.writeEntries([defaultEntry]);
  await files.writeCrtList([defaultEntry]);
  const knownMap = join(certDir, 'known.map');
  const luaFile = join(certDir, 'floor-ondemand.lua');
  await Promise.all([writeFile(knownMap, ''), writeFile(luaFile, ONDEMAND_LUA)]);

  const [endpointPort, tlsPort] = await Promise.all([freePort(), freePort()]);
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./ondemand-floor-child.ts', import.meta.url).pathname, `unix:${adminSocket}`, certDir, crtList, askUrl, String(endpointPort)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const { rootPem } = JSON.parse(line) as { rootPem: string };
  const haproxy = new ManagedHaproxy({
    configFile: join(dir, 'haproxy.cfg'),
    configText: demoHaproxyConfig({
      adminSocket,
      crtList,
      bind: `127.0.0.1:${tlsPort}`,
      onDemand: { knownMap, luaFile, urls: [`http://127.0.0.1:${endpointPort}/ondemand`], token: 'floor', maxWaitMs: 10_000, instanceTag: 'floor' },
    }),
    masterSocket: join(dir, 'master.sock'),
    runtimeSocket: adminSocket,
  });
  try {
    await haproxy.start();
  } catch (err) {
    child.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port: tlsPort,
    rootPem,
    async stop() {
      child.kill('SIGTERM');
      await haproxy.stop().catch(() => haproxy.kill());
      await rm(dir, { recursive: true, force: true });
    },
  };
}
