import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { startBind9, type TestBind9 } from './helpers/bind9.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { freePort } from './helpers/ports.js';
import { eventually, handshake } from './helpers/stack.js';

const run = promisify(execFile);

describe('fleet: three HAProxy instances kept in sync', () => {
  let fleet: Fleet;
  let ca: string;
  const servedBy = async (name: string) =>
    Promise.all(fleet.members.map(async (m) => (await handshake(m.tlsPort, name, { ca })).authorized));

  before(async () => {
    fleet = await startFleet({ listed: 3 });
    ca = await fleet.rootPem();
    const names = Array.from({ length: 200 }, (_, i) => `f${i}.fleet.test`);
    for (let i = 0; i < names.length; i += 20) {
      await Promise.all(names.slice(i, i + 20).map((n) => fleet.daemon.service.ensure([n])));
    }
  });
  after(() => fleet.stop());

  test('200 certificates: every instance serves them; a new one is served by all three when issue returns', async () => {
    for (const m of fleet.members) assert.equal((await handshake(m.tlsPort, 'f123.fleet.test', { ca })).authorized, true, m.name);
    const t0 = performance.now();
    const r = await fleet.daemon.service.ensure(['new.fleet.test']);
    assert.deepEqual(r.deploy?.ok.sort(), ['h1', 'h2', 'h3']);
    assert.deepEqual(await servedBy('new.fleet.test'), [true, true, true]);
    console.log(`# issue → served by 3 instances: ${(performance.now() - t0).toFixed(1)} ms`);
    for (const s of fleet.daemon.deployer.status()) assert.deepEqual([s.state, s.pending], ['up', 0], s.name);
  });

  test('an instance restarted with an empty runtime state is back in sync within 5 s; the others never stop serving', async () => {
    const [h1, h2, h3] = fleet.members as [NonNullable<Fleet['members'][0]>, NonNullable<Fleet['members'][0]>, NonNullable<Fleet['members'][0]>];
    const list = fleet.config.haproxy.crtList;
    const full = await readFile(list, 'utf8');
    await h2.haproxy.kill();
    await writeFile(list, full.split('\n').slice(0, 2).join('\n') + '\n');
    let othersFailed = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const m of [h1, h3]) if (!(await handshake(m.tlsPort, 'f77.fleet.test', { ca })).authorized) othersFailed++;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await h2.haproxy.start();
    await writeFile(list, full);
    await eventually(async () => {
      for (const n of ['f0.fleet.test', 'f199.fleet.test', 'new.fleet.test']) if (!(await handshake(h2.tlsPort, n, { ca })).authorized) return false;
      return true;
    }, 5_000, 'restarted instance in sync');
    await eventually(async () => fleet.daemon.deployer.status().find((s) => s.name === 'h2')!.pending === 0, 5_000, 'h2 status in sync');
    watching = false;
    await watcher;
    assert.equal(othersFailed, 0);
  });

  test('one hung instance does not slow the others', async () => {
    const h3 = fleet.members[2]!;
    const pid = await h3.haproxy.workerPid();
    process.kill(pid, 'SIGSTOP');
    try {
      const t0 = performance.now();
      const issuing = fleet.daemon.service.ensure(['while-hung.fleet.test']);
      await eventually(async () => (await handshake(fleet.members[0]!.tlsPort, 'while-hung.fleet.test', { ca })).authorized, 2_000, 'h1 serves');
      await eventually(async () => (await handshake(fleet.members[1]!.tlsPort, 'while-hung.fleet.test', { ca })).authorized, 2_000, 'h2 serves');
      const healthyMs = performance.now() - t0;
      const r = await issuing;
      assert.deepEqual(r.deploy?.ok.sort(), ['h1', 'h2'], `deploy outcome: ${JSON.stringify(r.deploy)}`);
      assert.equal(r.deploy?.failed[0]?.instance, 'h3');
      assert.ok(healthyMs < 2_000, `healthy instances took ${healthyMs} ms`);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await eventually(async () => (await handshake(h3.tlsPort, 'while-hung.fleet.test', { ca })).authorized, 10_000, 'h3 catches up');
  });

  test('a removed certificate is removed everywhere', async () => {
    await fleet.daemon.service.remove('f5.fleet.test');
    assert.deepEqual(await servedBy('f5.fleet.test'), [false, false, false]);
  });
});

describe('fleet discovery by DNS (real bind9 on loopback)', () => {
  let bind: TestBind9;
  let fleet: Fleet;
  let runtimePort: number;
  const nsupdate = async (lines: string[]) => {
    const k = bind.keys.sha256;
    const script = [`server 127.0.0.1 ${bind.port}`, `zone ${bind.zone}`, ...lines, 'send', ''].join('\n');
    const child = execFile('nsupdate', ['-y', `${k.algorithm}:${k.name}:${k.secret}`]);
    child.stdin!.end(script);
    await new Promise((resolve, reject) => child.once('close', (code) => (code === 0 ? resolve(code) : reject(new Error(`nsupdate exit ${code}`)))));
  };

  before(async () => {
    bind = await startBind9();
    runtimePort = await freePort();
    await nsupdate([`update add tasks.${bind.zone} 5 A 127.0.0.2`, `update add tasks.${bind.zone} 5 A 127.0.0.3`]);
    fleet = await startFleet({
      listed: 0,
      extra: { haproxy: { instances: [], certDir: './certs', discover: { dns: `tasks.${bind.zone}`, port: runtimePort, every: '300ms', server: bind.server } } },
    });
  });
  after(async () => {
    await fleet.stop();
    await bind.stop();
  });

  test('instances appear and disappear as the records change, and are synced when they appear', async () => {
    await fleet.addMember('d2', `127.0.0.2:${runtimePort}`);
    await fleet.addMember('d3', `127.0.0.3:${runtimePort}`);
    await fleet.addMember('d4', `127.0.0.4:${runtimePort}`);
    await fleet.daemon.service.ensure(['disc.fleet.test']);
    const names = () => fleet.daemon.deployer.status().map((s) => s.name).sort();
    await eventually(async () => names().join() === `127.0.0.2:${runtimePort},127.0.0.3:${runtimePort}`, 5_000, 'two discovered');
    await nsupdate([`update add tasks.${bind.zone} 5 A 127.0.0.4`]);
    await eventually(async () => names().length === 3, 5_000, 'third discovered');
    const ca = await fleet.rootPem();
    const d4 = fleet.members.find((m) => m.name === 'd4')!;
    await eventually(async () => (await handshake(d4.tlsPort, 'disc.fleet.test', { ca })).authorized, 5_000, 'new instance synced');
    const gone = `127.0.0.2:${runtimePort}`;
    const instanceSeries = async (instance: string) =>
      (await (await fetch(`${fleet.daemon.api.url}/metrics`)).text()).split('\n').filter((l) => l.includes(`instance="${instance}"`));
    await eventually(async () => (await instanceSeries(gone)).includes(`certd_instance_up{instance="${gone}"} 1`), 5_000, 'discovered instance up in /metrics');
    await nsupdate([`update delete tasks.${bind.zone} A 127.0.0.2`]);
    await eventually(async () => !names().includes(gone), 5_000, 'removed instance dropped');
    assert.deepEqual(await instanceSeries(gone), [], 'no metric series of the instance gone from discovery');
    assert.ok((await instanceSeries(`127.0.0.3:${runtimePort}`)).includes(`certd_instance_up{instance="127.0.0.3:${runtimePort}"} 1`));
    const { stdout } = await run('dig', ['+short', '-p', String(bind.port), '@127.0.0.1', `tasks.${bind.zone}`, 'A']);
    assert.deepEqual(stdout.trim().split('\n').sort(), ['127.0.0.3', '127.0.0.4']);
  });
});
