import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { silentLogger } from '../src/core/log.js';
import { writeInitialHaproxyFiles } from '../src/daemon/initial-files.js';
import { demoHaproxyConfig } from '../src/haproxy/assets/config.js';
import { ManagedHaproxy } from '../src/haproxy/managed/managed-haproxy.js';
import { runCli, spawnCli } from './helpers/cli.js';
import { eventually, freePort, startOnFreePort } from './helpers/stack.js';
import { handshake } from './helpers/tls.js';
import { stopChild } from './helpers/children.js';
import { tempDir } from './helpers/temp-dir.js';

/** A real `haproxy-certd run` and two real HAProxies; the config file changes under the daemon. */
describe('SIGHUP reloads the config in the running process', () => {
  let dir: string;
  let configFile: string;
  let apiPort: number;
  let child: ReturnType<typeof spawnCli>;
  let log = '';
  const haproxies: { name: string; haproxy: ManagedHaproxy; port: number; socket: string }[] = [];

  const yaml = (o: { instances: string[]; issuers: string[]; certs: [string, string][]; extra?: string }) => `dataDir: ./data
haproxy:
  instances: [${o.instances.map((n) => `{ runtime: "unix:./${n}.sock", name: ${n} }`).join(', ')}]
  certDir: ./certs
issuers: { ${o.issuers.map((i) => `${i}: { type: local-ca }`).join(', ')} }
certificates: [${o.certs.map(([name, issuer]) => `{ names: [${name}], issuer: ${issuer} }`).join(', ')}]
api: { listen: "127.0.0.1:${apiPort}" }
${o.extra ?? ''}`;
  const served = async (port: number, name: string) => (await handshake(port, name, { timeoutMs: 5_000 })).san.includes(name);
  const hup = async (expect: RegExp, what: string) => {
    const before = log.length;
    child.kill('SIGHUP');
    await eventually(async () => expect.test(log.slice(before)), 30_000, `${what} (log: ${log.slice(before)})`);
  };

  before(async () => {
    dir = tempDir('certd-reload-');
    configFile = join(dir, 'certd.yaml');
    apiPort = await freePort();
    await writeFile(configFile, yaml({ instances: ['h1'], issuers: ['internal'], certs: [['one.reload.test', 'internal']] }));
    const config = await loadConfig(configFile);
    await writeInitialHaproxyFiles(config, silentLogger);
    for (const name of ['h1', 'h2']) {
      const socket = join(dir, `${name}.sock`);
      const file = join(dir, `${name}.cfg`);
      const haproxy = new ManagedHaproxy({ configFile: file, masterSocket: join(dir, `${name}.master`), runtimeSocket: socket });
      const port = await startOnFreePort(haproxy, (p) => writeFile(file, demoHaproxyConfig({ adminSocket: socket, crtList: config.haproxy.crtList, bind: `127.0.0.1:${p}` })));
      haproxies.push({ name, haproxy, port, socket });
    }
    child = spawnCli(['--config', configFile, 'run']);
    child.stderr.on('data', (d) => (log += d));
    await eventually(async () => /daemon started/.test(log), 30_000, `daemon start (log: ${log})`);
  });

  after(async () => {
    await stopChild(child);
    for (const h of haproxies) await h.haproxy.stop().catch(() => h.haproxy.kill());
  });

  test('a valid change applies without a restart: a new certificate from a new issuer, a new instance', async () => {
    const [h1, h2] = haproxies as [(typeof haproxies)[0], (typeof haproxies)[0]];
    await eventually(() => served(h1.port, 'one.reload.test'), 30_000, 'one.reload.test on h1');
    assert.equal(await served(h2.port, 'one.reload.test'), false, 'h2 is not an instance yet');
    const workers = await Promise.all(haproxies.map((h) => h.haproxy.workerPid()));

    await writeFile(
      configFile,
      yaml({ instances: ['h1', 'h2'], issuers: ['internal', 'other'], certs: [['one.reload.test', 'internal'], ['two.reload.test', 'other']] }),
    );
    await hup(/"msg":"config reloaded"/, 'reload');
    await eventually(() => served(h2.port, 'one.reload.test'), 30_000, 'one.reload.test pushed to the new instance h2');
    await eventually(async () => (await served(h1.port, 'two.reload.test')) && (await served(h2.port, 'two.reload.test')), 30_000, 'two.reload.test on both');
    const listed = JSON.parse((await runCli(['--config', configFile, 'list', '--json'])).stdout) as { id: string; issuer: string }[];
    assert.equal(listed.find((c) => c.id === 'two.reload.test')?.issuer, 'other');

    assert.equal(child.exitCode, null, 'the same daemon process');
    assert.deepEqual(await Promise.all(haproxies.map((h) => h.haproxy.workerPid())), workers, 'no HAProxy reload');
  });

  test('an invalid config is refused with its problems, the running one stays; an unchanged one is a no-op', async () => {
    const good = yaml({ instances: ['h1', 'h2'], issuers: ['internal', 'other'], certs: [['one.reload.test', 'internal'], ['two.reload.test', 'other']] });
    await writeFile(configFile, `${good}sources: [ { type: directory, pth: ./x } ]\n`);
    await hup(/"msg":"config reload refused: the running config stays"/, 'refusal');
    assert.match(log, /certd\.yaml:\d+:\d+ sources\[0\]/, 'the problem, with file:line:col');
    assert.equal((await fetch(`http://127.0.0.1:${apiPort}/healthz`)).status, 200);
    assert.ok(await served(haproxies[0]!.port, 'two.reload.test'));

    await writeFile(configFile, good);
    await hup(/"msg":"config reload: unchanged, nothing to do"/, 'unchanged');
    assert.equal(child.exitCode, null);

    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, log);
  });
});
