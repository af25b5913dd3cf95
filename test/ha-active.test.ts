import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { DaemonClient } from '../src/cli/daemon-client.js';
import { onDemandToken } from '../src/daemon/token.js';
import type { IssueResult } from '../src/service/cert-service.js';
import { stopChild, TrackedHaproxy } from './helpers/children.js';
import { startHaproxy, type TestHaproxy } from './helpers/haproxy.js';
import { startPostgres, type Postgres } from './helpers/postgres.js';
import { demoHaproxyConfig } from '../src/haproxy/assets/config.js';
import { certDirLayout } from '../src/haproxy/cert-dir.js';
import { assertFenced, cuttableLink, leaseTokens, recordingRuntime, startReplica, TEST_TOKEN, type RecordedCommand, type Replica } from './helpers/replica.js';
import { runCli } from './helpers/cli.js';
import type { StatusSummary } from '../src/api/status-view.js';
import { eventually, freePort, handshake } from './helpers/stack.js';

/*
 * Active-active on a postgres store, through the real CLI: `run` replicas, a real HAProxy, a
 * private PostgreSQL. One replica owns the instance (its lease) and writes to it; the others
 * answer the API and on-demand, and their answers wait for the owner's announcement.
 */

const LEASE_MS = 5_000;
/** Generous: a loaded CI machine starts a node process in seconds, not milliseconds. */
const START_WAIT_MS = 90_000;

let server: Postgres;
let dir: string;
let h: TestHaproxy;
const replicas: Replica[] = [];
/** Closed after everything else (recording proxies, token readers). */
const closers: (() => Promise<void>)[] = [];

/**
 * The instance as replica `by` reaches it: through its own recording proxy, each command tagged
 * with the token of the `instance/h1` lease in the database at `url` when its connection opened.
 */
async function recorded(haproxy: TestHaproxy, by: string, url: string, commands: RecordedCommand[], close: (() => Promise<void>)[]): Promise<TestHaproxy> {
  const tokens = leaseTokens(url, 'instance/h1');
  const proxy = await recordingRuntime(haproxy.adminSocket, join(dir, `${by}.sock`), by, commands, () => tokens.now());
  close.push(() => proxy.close(), () => tokens.close());
  return { ...haproxy, runtime: proxy.runtime };
}

const status = (r: Replica) => api(r).call<StatusSummary>('GET', '/status');

/** A replica's own metrics text. */
const metricsOf = async (r: Replica) => (await fetch(`http://127.0.0.1:${r.apiPort}/metrics`)).text();

async function replica(name: string, o: { url?: string; haproxy?: TestHaproxy } = {}): Promise<Replica> {
  const r = await startReplica(name, {
    dir,
    url: o.url ?? server.url,
    haproxy: o.haproxy ?? h,
    store: `replicas: active-active, lease: ${LEASE_MS / 1000}s`,
    extra: ['onDemand: { issuer: internal, allow: [ "*.od.test" ], maxCertificates: 100 }'],
  });
  replicas.push(r);
  await eventually(async () => /"daemon started"/.test(r.log()), START_WAIT_MS, `${r.name}'s "daemon started" log line (log so far: ${r.log().slice(-2_000)})`);
  return r;
}

/** `POST /ondemand` as HAProxy's Lua calls it. */
async function askOnDemand(r: Replica, name: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${r.apiPort}/ondemand`, { method: 'POST', headers: { authorization: `Bearer ${onDemandToken(TEST_TOKEN)}`, 'content-type': 'text/plain' }, body: name });
  return { status: res.status, body: await res.text() };
}

/** How many times replica `r` logged issuing `name` on demand. */
const issuedLines = (r: Replica, name: string) => r.log().split('\n').filter((l) => l.includes('"on-demand certificate issued"') && l.includes(`"name":"${name}"`)).length;

const api = (r: Replica) => new DaemonClient(`http://127.0.0.1:${r.apiPort}`, TEST_TOKEN);
const owns = (r: Replica) => /owns instance h1/.test(r.log());

/** The answer's own handshake: the certificate must be served when the call returns (no polling). */
async function servedAtOnce(name: string, serial: string, haproxy = h): Promise<void> {
  const hs = await handshake(haproxy.tlsPort, name);
  assert.deepEqual(hs.san, [name], `${name} not served right after the answer`);
  assert.equal(hs.serial, serial);
}

before(async () => {
  server = await startPostgres();
  dir = await mkdtemp(join(tmpdir(), 'certd-ha-active-'));
  await writeFile(join(dir, 'store.key'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  h = await startHaproxy();
});

after(async () => {
  await Promise.all(replicas.map((r) => stopChild(r.child, 'SIGKILL')));
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await h?.stop();
  await server?.destroy();
  await rm(dir, { recursive: true, force: true });
});

describe('active-active: every replica answers, one writes to each instance', () => {
  let owner: Replica;
  let other: Replica;
  const commands: RecordedCommand[] = [];

  test('two replicas: exactly one owns the instance and one runs the cluster-wide work', async () => {
    const [a, b] = [await replica('a', { haproxy: await recorded(h, 'a', server.url, commands, closers) }), await replica('b', { haproxy: await recorded(h, 'b', server.url, commands, closers) })];
    await eventually(async () => owns(a) || owns(b), START_WAIT_MS, 'a replica owning h1');
    // A second look a lease later: the other must not have taken it meanwhile.
    await new Promise((r) => setTimeout(r, LEASE_MS));
    assert.notEqual(owns(a), owns(b), `exactly one owner: a ${owns(a)}, b ${owns(b)}`);
    [owner, other] = owns(a) ? [a, b] : [b, a];
    const workers = [a, b].filter((r) => /runs the cluster-wide work/.test(r.log()));
    assert.equal(workers.length, 1, 'one replica runs renewals and sources');
  });

  test('status (API, CLI --json, text) and metrics: every replica, what it owns with the lease\'s token, the store\'s health', async () => {
    const db = new pg.Client({ connectionString: server.url });
    await db.connect();
    const tokens = Object.fromEntries((await db.query<{ key: string; token: string }>('SELECT key, token FROM certd_locks WHERE expires_at > now()')).rows.map((r) => [r.key, r.token]));
    await db.end();
    const cli = await runCli(['--config', other.configFile, 'status', '--json'], { cwd: dir });
    assert.equal(cli.code, 0, cli.stderr);
    const view = JSON.parse(cli.stdout) as StatusSummary;
    assert.equal(view.replicas?.length, 2, JSON.stringify(view.replicas));
    for (const r of view.replicas!) {
      assert.equal(r.state, 'up');
      assert.ok(Date.parse(r.upSince) <= Date.now() && r.host && r.pid > 0 && /^http:\/\/127\.0\.0\.1:\d+$/.test(r.api), JSON.stringify(r));
      assert.ok(r.heartbeatAgeMs < LEASE_MS, `${r.id}'s heartbeat is ${r.heartbeatAgeMs} ms old`);
    }
    assert.deepEqual(view.replicas!.find((r) => r.self)!.pid, other.child.pid);
    const owning = view.replicas!.filter((r) => r.owns.length > 0);
    assert.equal(owning.length, 1);
    assert.equal(owning[0]!.pid, owner.child.pid);
    assert.deepEqual(owning[0]!.owns, [{ instance: 'h1', token: tokens['instance/h1'] }], 'the owner announces the token the store holds');
    assert.deepEqual(view.replicas!.filter((r) => r.clusterWork).map((r) => r.clusterWork), [tokens['replica/singleton']]);
    assert.equal(view.store?.ok, true);
    assert.ok(typeof view.store?.roundTripMs === 'number' && view.store.roundTripMs >= 0, JSON.stringify(view.store));
    const text = await runCli(['--config', other.configFile, 'status'], { cwd: dir, env: { ...process.env, COLUMNS: '250' } });
    assert.match(text.stdout, /store: postgres reachable; last statement [\d.]+ ms/);
    assert.match(text.stdout, new RegExp(`REPLICA.*OWNS \\(TOKEN\\)[\\s\\S]*h1 \\(${tokens['instance/h1']}\\)`));
    // The status page's content (its JSON form) lists them too.
    const page = (await (await fetch(`http://127.0.0.1:${owner.apiPort}/status/data`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })).json()) as StatusSummary;
    assert.deepEqual(page.replicas?.map((r) => [r.pid, r.self, r.owns.map((o) => o.instance)]).sort(), [[owner.child.pid, true, ['h1']], [other.child.pid, false, []]].sort());
    assert.equal(page.store?.ok, true);
    const [mo, mx] = [await metricsOf(owner), await metricsOf(other)];
    assert.match(mo, /^certd_replica_owns\{instance="h1"\} 1$/m);
    assert.doesNotMatch(mx, /^certd_replica_owns\{/m);
    for (const m of [mo, mx]) {
      assert.match(m, /^certd_replica_info\{replica="[^"]+",host="[^"]+",version="[^"]+"\} 1$/m);
      assert.match(m, /^certd_replicas\{state="up"\} 2$/m);
      assert.match(m, /^certd_store_up 1$/m);
      assert.match(m, /^certd_store_round_trip_seconds [\d.e-]+$/m);
    }
    assert.equal([mo, mx].filter((m) => /^certd_replica_cluster_work 1$/m.test(m)).length, 1);
  });

  test('an issue through the replica that owns nothing is served when it answers', async () => {
    const result = await api(other).call<IssueResult>('POST', '/certs', { names: ['via-other.aa.test'] });
    assert.deepEqual(result.deploy?.ok, ['h1'], JSON.stringify(result.deploy));
    await servedAtOnce('via-other.aa.test', result.cert.serial);
    const viaOwner = await api(owner).call<IssueResult>('POST', '/certs', { names: ['via-owner.aa.test'] });
    await servedAtOnce('via-owner.aa.test', viaOwner.cert.serial);
  });

  test('the same names through both replicas at once: one certificate each, cluster-wide', async () => {
    const names = Array.from({ length: 12 }, (_, i) => `same${i}.aa.test`);
    const results = await Promise.all(names.flatMap((n) => [owner, other].map((r) => api(r).call<IssueResult>('POST', '/certs', { names: [n] }))));
    for (const [i, n] of names.entries()) {
      const serials = new Set([results[2 * i]!.cert.serial, results[2 * i + 1]!.cert.serial]);
      assert.equal(serials.size, 1, `${n} issued twice`);
      assert.equal([results[2 * i]!, results[2 * i + 1]!].filter((r) => r.issued).length, 1, `${n}: exactly one issuance`);
      assert.equal((await handshake(h.tlsPort, n)).serial, [...serials][0]);
    }
  });

  test('50 names at once through two replicas that own nothing: each served when it answers and stored once (the owner reads them back in batches)', async () => {
    const third = await replica('c');
    try {
      const names = Array.from({ length: 50 }, (_, i) => `burst${i}.aa.test`);
      const results = await Promise.all(names.map((n, i) => api(i % 2 === 0 ? other : third).call<IssueResult>('POST', '/certs', { names: [n] })));
      const db = new pg.Client({ connectionString: server.url });
      await db.connect();
      const stored = new Map((await db.query<{ id: string; serial: string }>('SELECT id, serial FROM certd_certs WHERE id = ANY($1)', [names])).rows.map((r) => [r.id, r.serial]));
      await db.end();
      assert.equal(stored.size, names.length, `stored: ${stored.size} of ${names.length}`);
      for (const [i, n] of names.entries()) {
        const r = results[i]!;
        assert.equal(r.issued, true, `${n}: issued`);
        assert.deepEqual(r.deploy?.ok, ['h1'], `${n}: ${JSON.stringify(r.deploy)}`);
        assert.equal(stored.get(n), r.cert.serial, `${n}: the store holds the answer's certificate`);
        await servedAtOnce(n, r.cert.serial);
      }
    } finally {
      // Stopped cleanly: it lets go of what it holds, and the registry shows it stopped (one owner again for on-demand).
      await stopChild(third.child);
    }
  });

  test('on-demand asked of the replica that owns nothing: handed to the owner, which issues it once; served when it answers', async () => {
    // The registry (read each tick) must show the owner before the replica without an instance hands calls to it.
    await eventually(async () => (await status(other)).replicas?.some((r) => !r.self && r.state === 'up' && r.owns.length > 0) === true, START_WAIT_MS, `${other.name} seeing ${owner.name} up and owning h1`);
    const names = ['first.od.test', 'second.od.test'];
    const answers = await Promise.all([...names, ...names].map((n, i) => askOnDemand(i % 2 === 0 ? other : owner, n)));
    for (const a of answers) assert.equal(a.status, 200, a.body);
    for (const name of names) {
      const hs = await handshake(h.tlsPort, name);
      assert.deepEqual(hs.san, [name], 'served when the on-demand call returned');
      // The log is written asynchronously (pino through libuv's pool, behind the owner's fsyncs): its line may come after the answer.
      await eventually(async () => issuedLines(owner, name) + issuedLines(other, name) >= 1, 10_000, `the "on-demand certificate issued" line for ${name}`);
      const fellBack = other.log().split('\n').filter((l) => l.includes('on-demand answered by this replica'));
      assert.equal(issuedLines(owner, name), 1, `${name}: issued once, by the owner (issued by ${other.name}: ${issuedLines(other, name)}; ${other.name} fell back: ${fellBack.join(' | ') || 'never'})`);
      assert.equal(issuedLines(other, name), 0, `${name}: not issued by the replica that owns nothing (it handed the call on)`);
    }
  });

  test('a certificate removed through the other replica stops being served', async () => {
    await api(other).call('DELETE', '/certs/via-owner.aa.test');
    await eventually(async () => !(await handshake(h.tlsPort, 'via-owner.aa.test')).san.includes('via-owner.aa.test'), 10_000, 'via-owner.aa.test no longer served');
  });

  test('kill -9 of the owner: the other owns the instance within 2x the lease and its issues are served', async () => {
    const killedAt = Date.now();
    owner.child.kill('SIGKILL');
    // The registry still names the dead owner for up to a lease: the call handed to it is refused, and answered here.
    const lateCall = askOnDemand(other, 'after-kill.od.test');
    await eventually(async () => owns(other), 4 * LEASE_MS + 10_000, `${other.name} owning h1 (log: ${other.log().slice(-2_000)})`);
    const took = other.loggedAt(/owns instance h1/)! - killedAt;
    console.log(`instance taken over ${took} ms after kill -9 (lease ${LEASE_MS} ms)`);
    assert.ok(took <= 2 * LEASE_MS + 2_000, `took ${took} ms`);
    assert.match(other.log(), /runs the cluster-wide work/, 'the survivor runs the cluster-wide work too');
    const late = await lateCall;
    assert.ok(late.status === 200 || late.status === 202, late.body);
    await eventually(async () => (await handshake(h.tlsPort, 'after-kill.od.test')).san.includes('after-kill.od.test'), 30_000, 'after-kill.od.test served (issued by the survivor)');
    // Issued once cluster-wide: by the survivor, or by the owner if the call reached it before the kill took effect (its log line comes a little after the push).
    const issuedBy = () => issuedLines(other, 'after-kill.od.test') + issuedLines(owner, 'after-kill.od.test');
    await eventually(async () => issuedBy() >= 1, 10_000, 'the "on-demand certificate issued" line for after-kill.od.test');
    assert.equal(issuedBy(), 1, 'issued once');
    assert.match(other.log(), /on-demand answered by this replica: the owner replica \S+ (failed|took no connection)/, 'the call handed to the killed owner fell back, and the log says why');
    const result = await api(other).call<IssueResult>('POST', '/certs', { names: ['after-kill.aa.test'] });
    await servedAtOnce('after-kill.aa.test', result.cert.serial);
    // What the dead owner served stays served: the new owner reconciled from the store.
    assert.deepEqual((await handshake(h.tlsPort, 'via-other.aa.test')).san, ['via-other.aa.test']);
    const periods = assertFenced(commands);
    console.log(`kill -9: leases as the instance saw them: ${periods.map((p) => `token ${p.token} ${p.by} (${p.commands} commands)`).join(', ')}`);
    assert.deepEqual(periods.map((p) => p.by).slice(-2), [owner.name, other.name], 'the killed owner, then the survivor');
    // The dead one stays listed, as gone, with what it last announced.
    await eventually(async () => (await status(other)).replicas?.find((r) => r.pid === owner.child.pid)?.state === 'gone', 2 * LEASE_MS + 10_000, 'the killed replica shown as gone');
    const view = await status(other);
    assert.deepEqual(view.replicas!.find((r) => r.self)!.owns.map((o) => o.instance), ['h1']);
    assert.match(await metricsOf(other), /^certd_replicas\{state="gone"\} 1$/m);
  });

  test('a hung owner (SIGSTOP): on-demand handed to it answers pending by maxWait; a replica takes over and serves the name; the resumed one writes nothing', async () => {
    const hung = other;
    const c = await replica('c', { haproxy: await recorded(h, 'c', server.url, commands, closers) });
    await eventually(async () => (await status(c)).replicas?.some((r) => r.pid === hung.child.pid && r.owns.length > 0) === true, START_WAIT_MS, `c seeing ${hung.name} own h1`);
    process.kill(hung.child.pid!, 'SIGSTOP');
    try {
      // The kernel still takes the connection: the handed-on call waits for maxWait (10 s), no more.
      const t0 = Date.now();
      const first = await askOnDemand(c, 'while-hung.od.test');
      const waited = Date.now() - t0;
      assert.equal(first.status, 202, first.body);
      assert.ok(waited >= 9_000 && waited < 20_000, `answered after ${waited} ms (maxWait 10 s)`);
      await eventually(async () => owns(c), 4 * LEASE_MS + 10_000, `c owning h1 (log: ${c.log().slice(-2_000)})`);
      const again = await askOnDemand(c, 'while-hung.od.test');
      assert.equal(again.status, 200, again.body);
      assert.deepEqual((await handshake(h.tlsPort, 'while-hung.od.test')).san, ['while-hung.od.test'], 'served when the call returned');
    } finally {
      process.kill(hung.child.pid!, 'SIGCONT');
    }
    // Resumed, it finds its lease gone before it writes again.
    await eventually(async () => /lost instance h1/.test(hung.log()), 30_000, `${hung.name} noticing it lost h1`);
    await new Promise((r) => setTimeout(r, 1_000));
    // Its health probe may still read once (\`show info\`, seen: one) before it finds the lease
    // gone: reads do not conflict. Every write came under the lease its writer held, in order.
    const periods = assertFenced(commands.filter((x) => !x.command.startsWith('show ')));
    assert.deepEqual(periods.map((p) => p.by).slice(-2), [hung.name, 'c'], 'the hung owner, then c; no write from the hung one after');
    assert.deepEqual((await handshake(h.tlsPort, 'while-hung.od.test')).san, ['while-hung.od.test']);
  });
});

describe('active-active: an owner cut off from PostgreSQL stops writing before another replica starts', () => {
  test('partition of the owner under load: its last command comes before the new owner\'s first', async () => {
    const h2 = await startHaproxy();
    const commands: RecordedCommand[] = [];
    const closers: (() => Promise<void>)[] = [() => h2.stop()];
    try {
      await server.psql('CREATE DATABASE part OWNER certd');
      const url = server.url.replace(/\/certd$/, '/part');
      const link = await cuttableLink(server.port);
      closers.push(() => link.close());
      // Each replica reaches the instance through its own recording proxy: the log says who wrote when.
      const via = (by: string) => recorded(h2, by, url, commands, closers);
      const pa = await replica('pa', { url: url.replace(`:${server.port}/`, `:${link.port}/`), haproxy: await via('pa') });
      await eventually(async () => /owns instance h1/.test(pa.log()), START_WAIT_MS, 'pa owning h1');
      const pb = await replica('pb', { url, haproxy: await via('pb') });
      const served = await api(pb).call<IssueResult>('POST', '/certs', { names: ['before-cut.part.test'] });
      await servedAtOnce('before-cut.part.test', served.cert.serial, h2);
      // Load through the replica that stays connected, before, during and after the partition.
      let load = true;
      let i = 0;
      const loader = (async () => {
        while (load) await api(pb).call('POST', '/certs', { names: [`load${i++}.part.test`] }).catch(() => undefined);
      })();
      await new Promise((r) => setTimeout(r, 1_000));
      const cutAt = Date.now();
      link.cut();
      await eventually(async () => /owns instance h1/.test(pb.log()), 4 * LEASE_MS + 10_000, 'pb owning h1 after the cut');
      const lostAt = pa.loggedAt(/lost instance h1/);
      const tookAt = pb.loggedAt(/owns instance h1/)!;
      await new Promise((r) => setTimeout(r, 2_000));
      load = false;
      await loader;
      console.log(`partition: pa stopped writing ${lostAt === undefined ? '?' : lostAt - cutAt} ms after the cut, pb owns h1 ${tookAt - cutAt} ms after it (lease ${LEASE_MS} ms); ${i} issues under load`);
      assert.ok(lostAt !== undefined && lostAt <= tookAt, `pa lost h1 (${lostAt}) before pb took it (${tookAt})`);
      const lastByA = Math.max(...commands.filter((c) => c.by === 'pa').map((c) => c.at));
      const firstByB = Math.min(...commands.filter((c) => c.by === 'pb').map((c) => c.at));
      assert.ok(commands.some((c) => c.by === 'pa') && commands.some((c) => c.by === 'pb'), 'both replicas wrote at some point');
      assert.ok(lastByA < firstByB, `pa's last command at ${lastByA} is not before pb's first at ${firstByB}`);
      const periods = assertFenced(commands);
      console.log(`partition: leases as the instance saw them: ${periods.map((p) => `token ${p.token} ${p.by} (${p.commands} commands)`).join(', ')}`);
      assert.deepEqual(periods.map((p) => p.by), ['pa', 'pb']);
      assert.equal(pa.child.exitCode, null, 'the cut-off replica keeps running (it answers, it does not write)');
      const after = await api(pb).call<IssueResult>('POST', '/certs', { names: ['after-cut.part.test'] });
      assert.deepEqual(after.deploy?.ok, ['h1']);
      await servedAtOnce('after-cut.part.test', after.cert.serial, h2);
    } finally {
      for (const close of closers.reverse()) await close().catch(() => undefined);
    }
  });
});

describe('active-active: 3 replicas, 2 HAProxy instances, 300 new names at once', () => {
  test('on-demand through each HAProxy\'s Lua (replicas tried in turn) and the API: all served on both instances, exactly 300 issued', async () => {
    const sub = join(dir, 'three');
    const certDir = join(sub, 'certs');
    const crtList = join(certDir, 'crt-list.txt');
    const layout = certDirLayout(certDir);
    await server.psql('CREATE DATABASE three OWNER certd');
    const url = server.url.replace(/\/certd$/, '/three');
    const instances = ['h1', 'h2'].map((name) => ({ name, socket: join(sub, `${name}.sock`), master: join(sub, `${name}.master`) }));
    const ports = [await freePort(), await freePort(), await freePort()];
    const od = `onDemand: { issuer: internal, allow: [ "*.three.test" ], maxCertificates: 1000, rateLimit: { perMinute: 100000, burst: 1000 }, replicas: [ ${ports.map((p) => `"127.0.0.1:${p}"`).join(', ')} ] }`;
    const haproxies: TrackedHaproxy[] = [];
    const started: Replica[] = [];
    try {
      await import('node:fs/promises').then((fs) => fs.mkdir(sub, { recursive: true }));
      await writeFile(join(sub, 'store.key'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
      for (const [i, name] of ['ra', 'rb', 'rc'].entries()) {
        const r = await startReplica(name, {
          dir: sub,
          url,
          haproxy: { crtList, runtime: '' },
          instances: instances.map((h) => ({ name: h.name, runtime: `unix:${h.socket}` })),
          store: `replicas: active-active, lease: ${LEASE_MS / 1000}s`,
          extra: [od],
          apiPort: ports[i],
        });
        started.push(r);
        replicas.push(r);
      }
      for (const r of started) {
        await eventually(
          async () => {
            if (r.child.exitCode !== null) throw new Error(`${r.name} exited ${r.child.exitCode}: ${r.log()}`);
            return /"daemon started"/.test(r.log());
          },
          START_WAIT_MS,
          `${r.name}'s "daemon started" line`,
        ).catch((err: Error) => {
          throw new Error(`${err.message}; its log: ${r.log().slice(-3_000)}`);
        });
      }
      // Each HAProxy's Lua asks the replicas in its own order (h2 starts with the second one).
      const tlsPorts: number[] = [];
      for (const [i, h] of instances.entries()) {
        const order = [...ports.slice(i), ...ports.slice(0, i)];
        const tlsPort = await freePort();
        tlsPorts.push(tlsPort);
        const configFile = join(sub, `${h.name}.cfg`);
        // abns@ names are host-wide: the tag carries the port this run holds.
        const onDemand = { knownMap: layout.knownMap, luaFile: layout.luaFile, urls: order.map((p) => `http://127.0.0.1:${p}/ondemand`), token: onDemandToken(TEST_TOKEN), maxWaitMs: 10_000, instanceTag: `${h.name}-${tlsPort}` };
        await writeFile(configFile, demoHaproxyConfig({ adminSocket: h.socket, crtList, bind: `127.0.0.1:${tlsPort}`, onDemand }));
        const haproxy = new TrackedHaproxy({ configFile, masterSocket: h.master, runtimeSocket: h.socket });
        await haproxy.start();
        haproxies.push(haproxy);
      }
      // Started after the replicas: each is up once its owner's retry (backoff up to 5 s) reached it.
      await eventually(
        async () => {
          const states = await Promise.all(ports.map((p) => new DaemonClient(`http://127.0.0.1:${p}`, TEST_TOKEN).call<{ instances: { name: string; state: string }[] }>('GET', '/status')));
          return ['h1', 'h2'].every((n) => states.some((v) => v.instances.some((i) => i.name === n && i.state === 'up')));
        },
        30_000,
        'both instances up at their owners',
      );
      const names = Array.from({ length: 300 }, (_, i) => `n${i}.three.test`);
      const issuedBefore = await issuedTotal(ports);
      let next = 0;
      const failures: string[] = [];
      await Promise.all(
        Array.from({ length: 12 }, async () => {
          while (next < names.length) {
            const i = next++;
            const name = names[i]!;
            // A third through each HAProxy's first handshake, a third through the API of the replica listed last.
            if (i % 3 < 2) {
              const hs = await handshake(tlsPorts[i % 3]!, name).catch((err: Error) => ({ san: [err.message] }));
              if (!hs.san.includes(name)) failures.push(`${name}: first handshake on h${(i % 3) + 1} got ${JSON.stringify(hs.san)}`);
            } else {
              await new DaemonClient(`http://127.0.0.1:${ports[2]}`, TEST_TOKEN).call('POST', '/certs', { names: [name] }).catch((err: Error) => failures.push(`${name}: ${err.message}`));
            }
          }
        }),
      );
      // A first handshake waits for its own instance only within the answer's grace after the
      // other instance served it (ANSWER_GRACE_MS): on a loaded machine an owner lagging more
      // than that leaves that one handshake the default certificate. Counted, and served later.
      console.log(`first handshakes not served at once: ${failures.length} of 200 (${failures.slice(0, 3).join('; ')})`);
      assert.ok(failures.filter((f) => !f.includes('first handshake')).length === 0, `API issues failed: ${failures.join('; ')}`);
      for (const name of names) {
        for (const port of tlsPorts) {
          await eventually(async () => (await handshake(port, name)).san.includes(name), 30_000, `${name} served on port ${port}`);
        }
      }
      assert.equal((await issuedTotal(ports)) - issuedBefore, 300, 'the CA (the replicas\' local CA, counted by every replica) issued exactly 300');
      const db = new pg.Client({ connectionString: url });
      await db.connect();
      try {
        const { rows } = await db.query<{ n: string; serials: string }>("SELECT count(*) AS n, count(DISTINCT serial) AS serials FROM certd_certs WHERE id LIKE '%.three.test'");
        assert.deepEqual(rows[0], { n: '300', serials: '300' });
      } finally {
        await db.end();
      }
    } finally {
      await Promise.all(started.map((r) => stopChild(r.child, 'SIGKILL')));
      for (const h of haproxies) await h.stop().catch(() => h.kill());
    }
  });
});

/** Certificates issued, summed over the replicas' /metrics (each counts its own issuances). */
async function issuedTotal(ports: number[]): Promise<number> {
  let total = 0;
  for (const port of ports) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const m of text.matchAll(/^certd_issue_total\{[^}]*result="ok"[^}]*\} (\d+)$/gm)) total += Number(m[1]);
  }
  return total;
}

describe('active-active: PostgreSQL stopped for 30 s under load', () => {
  const OUTAGE_MS = 30_000;

  test('two replicas ride it out: known names served throughout, issuance refused clearly, all back within 5 s, no lock stuck', async () => {
    // The earlier replicas would only share the two cores: they are done.
    await Promise.all(replicas.map((r) => stopChild(r.child, 'SIGKILL')));
    const h3 = await startHaproxy();
    const local: (() => Promise<void>)[] = [() => h3.stop()];
    let load = true;
    const loaders: Promise<void>[] = [];
    try {
      await server.psql('CREATE DATABASE outage OWNER certd');
      const url = server.url.replace(/\/certd$/, '/outage');
      const oa = await replica('oa', { url, haproxy: h3 });
      const ob = await replica('ob', { url, haproxy: h3 });
      const both = [oa, ob];
      await eventually(async () => (await status(oa)).instances.some((i) => i.state === 'up') || (await status(ob)).instances.some((i) => i.state === 'up'), START_WAIT_MS, 'h1 up at its owner');
      const known = new Map<string, string>();
      for (let i = 0; i < 6; i++) {
        const name = `known${i}.out.test`;
        const r = await api(both[i % 2]!).call<IssueResult>('POST', '/certs', { names: [name] });
        await servedAtOnce(name, r.cert.serial, h3);
        known.set(name, r.cert.serial);
      }
      // Load: handshakes for the known names (two at a time) and issues through both replicas.
      const handshakes: { at: number; name: string; ok: boolean; why?: string }[] = [];
      const issues: { at: number; by: string; ok: boolean; code?: string; message?: string }[] = [];
      const names = [...known.keys()];
      for (let w = 0; w < 2; w++) {
        loaders.push(
          (async () => {
            for (let i = w; load; i += 2) {
              const name = names[i % names.length]!;
              const hs = await handshake(h3.tlsPort, name).catch((err: Error) => ({ serial: err.message, san: [] }));
              handshakes.push({ at: Date.now(), name, ok: hs.serial === known.get(name), ...(hs.serial === known.get(name) ? {} : { why: hs.serial }) });
              await new Promise((r) => setTimeout(r, 50));
            }
          })(),
        );
      }
      let n = 0;
      loaders.push(
        (async () => {
          while (load) {
            const r = both[n % 2]!;
            const name = `load${n++}.out.test`;
            const sent = Date.now();
            await api(r)
              .call<IssueResult>('POST', '/certs', { names: [name] }, 20_000)
              .then(
                () => issues.push({ at: sent, by: r.name, ok: true }),
                (err: { code?: string; message: string }) => issues.push({ at: sent, by: r.name, ok: false, code: err.code, message: err.message }),
              );
            await new Promise((res) => setTimeout(res, 200));
          }
        })(),
      );
      await new Promise((r) => setTimeout(r, 2_000));

      await server.stop();
      const downAt = Date.now();
      try {
        // Said loudly, and by status: the store unreachable, the replicas still listed.
        await eventually(async () => (await status(oa)).store?.ok === false && (await status(ob)).store?.ok === false, 15_000, 'both replicas reporting the store unreachable');
        const view = await status(oa);
        assert.match(view.store!.error ?? '', /PostgreSQL at 127\.0\.0\.1:\d+\/outage is not answering/);
        assert.equal(view.replicas?.length, 2, 'the registry as last read is still shown');
        const cli = await runCli(['--config', ob.configFile, 'status'], { cwd: dir });
        assert.equal(cli.code, 1, 'status exits 1 while the store is unreachable');
        assert.match(cli.stderr, /store unreachable since .*not answering/);
        assert.match(cli.stdout, /store: postgres UNREACHABLE since/);
        assert.match(await metricsOf(ob), /^certd_store_up 0$/m);
        await new Promise((r) => setTimeout(r, Math.max(0, downAt + OUTAGE_MS - Date.now())));
      } finally {
        await server.start();
      }
      const upAt = Date.now();
      console.log(`PostgreSQL was stopped ${upAt - downAt} ms`);

      // Back: a new name through each replica is issued and served at its answer; h1 has an owner; the work runs.
      const back = await Promise.all(
        both.map(async (r, i) => {
          for (let k = 0; ; k++) {
            const name = `back${i}-${k}.out.test`;
            const res = await api(r).call<IssueResult>('POST', '/certs', { names: [name] }, 10_000).catch(() => undefined);
            if (res?.issued) {
              const at = Date.now() - upAt;
              await servedAtOnce(name, res.cert.serial, h3);
              return at;
            }
            if (Date.now() - upAt > 60_000) throw new Error(`${r.name} issued nothing within 60 s of the database's return`);
            await new Promise((res2) => setTimeout(res2, 100));
          }
        }),
      );
      await eventually(
        async () => {
          const v = await status(oa);
          return v.store?.ok === true && v.replicas?.filter((x) => x.state === 'up').length === 2 && v.replicas.some((x) => x.owns.some((o) => o.instance === 'h1')) && v.replicas.some((x) => x.clusterWork);
        },
        30_000,
        'h1 owned and the cluster-wide work taken again, both replicas up',
      );
      const ownedAt = Date.now() - upAt;
      console.log(`after the database's return: issued and served through oa ${back[0]} ms, ob ${back[1]} ms; owner and cluster-wide work listed again by ${ownedAt} ms`);
      for (const [i, ms] of back.entries()) assert.ok(ms <= 5_000, `${both[i]!.name} resumed within 5 s: ${ms} ms`);
      assert.ok(ownedAt <= 5_000, `ownership back within 5 s: ${ownedAt} ms`);
      await new Promise((r) => setTimeout(r, 2_000));
      load = false;
      await Promise.all(loaders);

      const failed = handshakes.filter((x) => !x.ok);
      console.log(`handshakes for known names: ${handshakes.length} (${handshakes.filter((x) => x.at > downAt && x.at < upAt).length} during the outage), ${failed.length} failed; issues under load: ${issues.length}, refused during the outage: ${issues.filter((x) => !x.ok).length}`);
      assert.equal(failed.length, 0, `known names not served: ${JSON.stringify(failed.slice(0, 5))}`);
      const during = issues.filter((x) => x.at > downAt + 1_000 && x.at < upAt - 1_000);
      assert.ok(during.length >= 10, `issues tried during the outage: ${during.length}`);
      const unclear = during.filter((x) => x.ok || x.code !== 'CERTD_E_STORE_UNAVAILABLE' || !/PostgreSQL at 127\.0\.0\.1:\d+\/outage is not answering.*HAProxy keeps serving what it has/.test(x.message ?? ''));
      assert.deepEqual(unclear, [], 'every issue during the outage is refused with CERTD_E_STORE_UNAVAILABLE naming the database');
      for (const r of both) {
        assert.match(r.log(), /"level":50.*PostgreSQL at 127\.0\.0\.1:\d+\/outage (is not answering|closed a connection)/, `${r.name} logs the outage as an error`);
        assert.match(r.log(), /PostgreSQL at 127\.0\.0\.1:\d+\/outage answers again/, `${r.name} logs the return`);
        assert.equal(r.child.exitCode, null, `${r.name} rode out the outage`);
      }
      // No lock stuck: only the instance's and the work's leases are held, by the replicas that say so.
      await eventually(
        async () => {
          const db = new pg.Client({ connectionString: url });
          await db.connect();
          try {
            const held = (await db.query<{ key: string; token: string }>('SELECT key, token FROM certd_locks WHERE expires_at > now() ORDER BY key')).rows;
            const v = await status(oa);
            const announced = [
              ...v.replicas!.flatMap((x) => x.owns.map((o) => ({ key: `instance/${o.instance}`, token: o.token }))),
              ...v.replicas!.filter((x) => x.clusterWork).map((x) => ({ key: 'replica/singleton', token: x.clusterWork! })),
            ].sort((a, b) => a.key.localeCompare(b.key));
            if (JSON.stringify(held) !== JSON.stringify(announced)) throw new Error(`held ${JSON.stringify(held)} vs announced ${JSON.stringify(announced)}`);
            return held.map((x) => x.key).join(' ') === 'instance/h1 replica/singleton';
          } finally {
            await db.end();
          }
        },
        2 * LEASE_MS + 10_000,
        'only instance/h1 and replica/singleton held, by the replicas announcing them',
      );
    } finally {
      load = false;
      await Promise.allSettled(loaders);
      for (const close of local.reverse()) await close().catch(() => undefined);
    }
  });
});
