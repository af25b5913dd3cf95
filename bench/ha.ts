/**
 * High availability on PostgreSQL (issue #10), with real `haproxy-certd run` processes, a private
 * PostgreSQL 15 (initdb into a temp dir, loopback port) and one real HAProxy. In one run:
 *
 *  - failover: an active replica and a standby; kill -9 of the active → the first name issued
 *    through the standby's API presented by HAProxy (the first push of the new writer), ROUNDS
 *    times (a new standby each round); median and worst against the goal ≤ 2× the lease;
 *  - issuance throughput: NAMES local-CA names through `POST /v1/certs` (32 clients), one replica
 *    on the filesystem store, then one on PostgreSQL, then three active-active replicas on
 *    PostgreSQL with the clients spread over their APIs: postgres ÷ fs (goal ≥ 0.8×), three ÷ one
 *    (goal ≥ 1.0×);
 *  - on-demand on two active-active replicas: `POST /ondemand` (what HAProxy's Lua waits for)
 *    until a handshake presents the name, asked of the replica that owns the instance and of the
 *    one that does not, alternately (goal: non-owner ÷ owner ≤ 1.2×).
 *
 * Failures are counted per step; the bench always finishes. A full run refreshes the `ha` section
 * of bench/RESULTS.md.
 *
 *   npm run bench:ha                 (ROUNDS=10 NAMES=500; ~8 minutes on 2 cores)
 *   npm run bench:ha -- --quick      (3 rounds, 100 names; prints only)
 *   ONLY=ondemand npm run bench:ha   (one part: failover, throughput or ondemand; prints only)
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DaemonClient } from '../src/cli/daemon-client.js';
import { spawnCli } from '../test/helpers/cli.js';
import { stopChild } from '../test/helpers/children.js';
import { startHaproxy, type TestHaproxy } from '../test/helpers/haproxy.js';
import { startPostgres, type Postgres } from '../test/helpers/postgres.js';
import { onDemandToken } from '../src/daemon/token.js';
import { startReplica, TEST_TOKEN, type Replica } from '../test/helpers/replica.js';
import { eventually, freePort, handshake } from '../test/helpers/stack.js';
import { cpuSeconds, cpuSecondsOfAll, loadAverage, machineLines } from './lib/machine.js';
import { refreshSection } from './lib/results.js';
import { median, ms, num, quantile, ratio } from './lib/stats.js';
import { markdownTable, verdict } from './lib/table.js';

const QUICK = process.argv.includes('--quick');
const ROUNDS = Number(process.env.ROUNDS ?? (QUICK ? 3 : 10));
const NAMES = Number(process.env.NAMES ?? (QUICK ? 100 : 500));
const ONLY = process.env.ONLY;
/** Whether this run measures `part` (every part unless ONLY names one). */
const runs = (part: 'failover' | 'throughput' | 'ondemand') => ONLY === undefined || ONLY === part;
const LEASE_MS = 5_000;
const CLIENTS = Number(process.env.CLIENTS ?? 32);
/** Generous: a node process starts in seconds on a loaded 2-core machine. */
const START_WAIT_MS = 120_000;
const RESULTS = fileURLToPath(new URL('./RESULTS.md', import.meta.url));

const failures = new Map<string, number>();
function failed(step: string, err: unknown): void {
  failures.set(step, (failures.get(step) ?? 0) + 1);
  console.error(`# ${step} failed: ${(err as Error).message}`);
}

const client = (port: number) => new DaemonClient(`http://127.0.0.1:${port}`, TEST_TOKEN);

/** Until HAProxy presents a certificate naming `name` (a fresh TLS handshake each look). */
async function servedNow(h: TestHaproxy, name: string, waitMs: number): Promise<void> {
  await eventually(async () => (await handshake(h.tlsPort, name).catch(() => ({ san: [] as string[] }))).san.includes(name), waitMs, `HAProxy presenting ${name}`);
}

/** Kill -9 of the active, then: until a name issued through the standby is presented. */
async function failover(dir: string, url: string, h: TestHaproxy): Promise<number[]> {
  const started: Replica[] = [];
  const replica = async (name: string) => {
    const r = await startReplica(name, { dir, url, haproxy: h, store: `lease: ${LEASE_MS / 1000}s` });
    started.push(r);
    return r;
  };
  const samples: number[] = [];
  try {
    let active = await replica('r0');
    await eventually(async () => /"daemon started"/.test(active.log()), START_WAIT_MS, `r0's "daemon started" line`);
    for (let i = 1; i <= ROUNDS; i++) {
      try {
        const standby = await replica(`r${i}`);
        await eventually(async () => /standing by/.test(standby.log()), START_WAIT_MS, `r${i}'s "standing by" line`);
        const name = `f${i}.failover.bench`;
        const killedAt = performance.now();
        active.child.kill('SIGKILL');
        // The standby's API listens only once it has taken over: refused until then.
        await eventually(async () => client(standby.apiPort).call('POST', '/certs', { names: [name] }).then(() => true, () => false), 4 * LEASE_MS + START_WAIT_MS, `r${i} taking a request`);
        await servedNow(h, name, 30_000);
        samples.push(performance.now() - killedAt);
        console.error(`# failover ${i}/${ROUNDS}: ${ms(samples.at(-1)!)} (load ${loadAverage()})`);
        active = standby;
      } catch (err) {
        failed('failover', err);
      }
    }
  } finally {
    await Promise.all(started.map((r) => stopChild(r.child, 'SIGKILL')));
  }
  return samples;
}

/** One `run` on the given store line, NAMES issued by CLIENTS at once: certificates per second. */
async function throughput(dir: string, tag: string, store: string, h: TestHaproxy): Promise<Throughput> {
  const port = await freePort();
  const config = join(dir, `${tag}.yaml`);
  await writeFile(
    config,
    [
      `dataDir: ./data-${tag}`,
      ...(store ? [`store: ${store}`] : []),
      `haproxy: { certDir: ./certs-${tag}, crtList: "${h.crtList}", instances: [ { runtime: "${h.runtime}", name: h1 } ] }`,
      `api: { listen: "127.0.0.1:${port}", token: ${TEST_TOKEN} }`,
      'issuers: { internal: { type: local-ca } }',
      '',
    ].join('\n'),
  );
  const child = spawnCli(['--config', config, 'run'], { cwd: dir, env: { ...process.env, CERTD_LOG_LEVEL: 'warn' } });
  try {
    // /healthz answers 200 once the daemon takes writes (reads are answered earlier, during its start).
    await eventually(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok === true, START_WAIT_MS, `${tag} daemon ready (/healthz)`);
    return await issueThrough([port], tag, [child.pid!]);
  } finally {
    await stopChild(child);
  }
}

/** What a throughput run measured: certificates per second, and CPU per certificate where it went. */
interface Throughput {
  perSecond: number;
  /** CPU ms per certificate issued: the `run` processes, all PostgreSQL processes, all HAProxy processes. */
  cpuMs: { certd: number; postgres: number; haproxy: number };
}

/** CPU seconds of the daemons (`pids`), PostgreSQL and HAProxy, now. */
async function cpuNow(pids: number[]): Promise<[number, number, number]> {
  const certd = (await Promise.all(pids.map(cpuSeconds))).reduce((a, b) => a + b, 0);
  return [certd, await cpuSecondsOfAll('postgres'), await cpuSecondsOfAll('haproxy')];
}

/** NAMES issued by CLIENTS at once, client i through ports[i mod n], by the daemons `pids`. */
async function issueThrough(ports: number[], tag: string, pids: number[]): Promise<Throughput> {
  const names = Array.from({ length: NAMES }, (_, i) => `n${i}.${tag}.bench`);
  let next = 0;
  let errors = 0;
  const cpu0 = await cpuNow(pids);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      const api = client(ports[c % ports.length]!);
      while (next < names.length) {
        const name = names[next++]!;
        await api.call('POST', '/certs', { names: [name] }).catch((err: Error) => {
          errors++;
          if (errors <= 3) console.error(`# ${tag}: ${name}: ${err.message}`);
        });
      }
    }),
  );
  const perSecond = (NAMES - errors) / ((performance.now() - t0) / 1000);
  const [certd, postgres, haproxy] = (await cpuNow(pids)).map((c, i) => (1000 * (c - cpu0[i]!)) / Math.max(1, NAMES - errors)) as [number, number, number];
  for (let i = 0; i < errors; i++) failed(`throughput ${tag}`, new Error('an issue request failed'));
  console.error(`# throughput ${tag}: ${num(perSecond, 1)}/s (${errors} failed, load ${loadAverage()}); CPU per certificate: certd ${num(certd, 2)} ms, PostgreSQL ${num(postgres, 2)} ms, HAProxy ${num(haproxy, 2)} ms`);
  return { perSecond, cpuMs: { certd, postgres, haproxy } };
}

/** `n` active-active replicas in their own directory on database `url`, all started (and the instance owned). */
async function activeActive(dir: string, tag: string, url: string, h: TestHaproxy, n: number, extra: string[] = []): Promise<Replica[]> {
  const sub = join(dir, tag);
  await mkdir(sub, { recursive: true });
  await writeFile(join(sub, 'store.key'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  const replicas: Replica[] = [];
  for (let i = 0; i < n; i++) replicas.push(await startReplica(`${tag}${i}`, { dir: sub, url, haproxy: h, store: `replicas: active-active, lease: ${LEASE_MS / 1000}s`, extra }));
  for (const r of replicas) await eventually(async () => /"daemon started"/.test(r.log()), START_WAIT_MS, `${r.name}'s "daemon started" line`);
  await eventually(async () => replicas.some((r) => /owns instance h1/.test(r.log())), START_WAIT_MS, `a ${tag} replica owning h1`);
  return replicas;
}

/** Three active-active replicas, the clients spread over their APIs. */
async function throughputThree(dir: string, url: string, h: TestHaproxy): Promise<Throughput> {
  const replicas = await activeActive(dir, 'three', url, h, 3);
  try {
    return await issueThrough(replicas.map((r) => r.apiPort), 'three', replicas.map((r) => r.child.pid!));
  } finally {
    await Promise.all(replicas.map((r) => stopChild(r.child)));
  }
}

/** On-demand answered by the owner and by the other replica, alternately: p50 of POST /ondemand → presented, each. */
async function onDemandOwnerVsOther(dir: string, url: string, h: TestHaproxy): Promise<{ owner: number; other: number }> {
  const od = 'onDemand: { issuer: internal, allow: [ "*.od.bench" ], maxCertificates: 100000, rateLimit: { perMinute: 100000, burst: 1000 } }';
  const replicas = await activeActive(dir, 'od', url, h, 2, [od]);
  const samples = { owner: [] as number[], other: [] as number[] };
  try {
    const owner = replicas.find((r) => /owns instance h1/.test(r.log()))!;
    const other = replicas.find((r) => r !== owner)!;
    for (let i = 0; i < 2 * ROUNDS * 3; i++) {
      const [who, r] = i % 2 === 0 ? (['owner', owner] as const) : (['other', other] as const);
      const name = `${who}${i}.od.bench`;
      try {
        const t0 = performance.now();
        const res = await fetch(`http://127.0.0.1:${r.apiPort}/ondemand`, { method: 'POST', headers: { authorization: `Bearer ${onDemandToken(TEST_TOKEN)}` }, body: name });
        if (res.status !== 200) throw new Error(`${name}: /ondemand answered ${res.status} ${await res.text()}`);
        if (!(await handshake(h.tlsPort, name)).san.includes(name)) throw new Error(`${name}: not presented when /ondemand answered`);
        samples[who].push(performance.now() - t0);
      } catch (err) {
        failed(`on-demand via ${who}`, err);
      }
    }
  } finally {
    await Promise.all(replicas.map((r) => stopChild(r.child)));
  }
  console.error(`# on-demand: owner p50 ${ms(quantile(samples.owner, 0.5))}, other p50 ${ms(quantile(samples.other, 0.5))} (load ${loadAverage()})`);
  return { owner: quantile(samples.owner, 0.5), other: quantile(samples.other, 0.5) };
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const load0 = loadAverage();
  const dir = await mkdtemp(join(tmpdir(), 'certd-bench-ha-'));
  await writeFile(join(dir, 'store.key'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  let pgServer: Postgres | undefined;
  const haproxies: TestHaproxy[] = [];
  let fail = NaN;
  const none: Throughput = { perSecond: NaN, cpuMs: { certd: NaN, postgres: NaN, haproxy: NaN } };
  let fs = none;
  let pg = none;
  let three = none;
  let od = { owner: NaN, other: NaN };
  let failSamples: number[] = [];
  try {
    pgServer = await startPostgres();
    const database = async (name: string) => {
      await pgServer!.psql(`CREATE DATABASE ${name} OWNER certd`);
      return pgServer!.url.replace(/\/certd$/, `/${name}`);
    };
    if (runs('failover')) {
      const h = await startHaproxy();
      haproxies.push(h);
      failSamples = await failover(dir, await database('failover'), h).catch((err: unknown) => (failed('failover', err), []));
      fail = failSamples.length ? median(failSamples) : NaN;
    }
    if (runs('throughput')) await throughputs(database);
    if (runs('ondemand')) {
      const hOd = await startHaproxy();
      haproxies.push(hOd);
      od = await onDemandOwnerVsOther(dir, await database('ondemand'), hOd).catch((err: unknown) => (failed('on-demand', err), od));
    }
  } catch (err) {
    failed('setup', err);
  } finally {
    await Promise.all(haproxies.map((h) => h.stop().catch(() => undefined)));
    await pgServer?.destroy().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }

  /** fs, then postgres, then three replicas: each store on its own HAProxy (nothing one served is in the next one's way). */
  async function throughputs(database: (name: string) => Promise<string>): Promise<void> {
    const hFs = await startHaproxy();
    haproxies.push(hFs);
    fs = await throughput(dir, 'fs', '', hFs).catch((err: unknown) => (failed('throughput fs', err), none));
    const hPg = await startHaproxy();
    haproxies.push(hPg);
    const pgUrl = await database('throughput');
    pg = await throughput(dir, 'pg', `{ type: postgres, url: "${pgUrl}", keyFile: ./store.key, sslmode: disable }`, hPg).catch((err: unknown) => (failed('throughput pg', err), none));
    const hThree = await startHaproxy();
    haproxies.push(hThree);
    three = await throughputThree(dir, await database('three'), hThree).catch((err: unknown) => (failed('throughput three', err), none));
  }

  const [fsRate, pgRate, threeRate] = [fs.perSecond, pg.perSecond, three.perSecond];
  const cpu = (t: Throughput) => `${num(t.cpuMs.certd, 2)} / ${num(t.cpuMs.postgres, 2)} / ${num(t.cpuMs.haproxy, 2)} ms`;
  const table = markdownTable(
    ['measure', 'value', 'goal', 'verdict'],
    [
      [`failover: kill -9 of the active → a new name served via the standby, median of ${failSamples.length}`, ms(fail), `≤ 2× lease (${ms(2 * LEASE_MS)})`, verdict(fail, 2 * LEASE_MS)],
      ['failover: worst', failSamples.length ? ms(Math.max(...failSamples)) : '—', '', ''],
      [`issuance, ${NAMES} names, ${CLIENTS} clients: 1 replica on fs`, `${num(fsRate, 1)}/s`, '', ''],
      [`issuance, ${NAMES} names, ${CLIENTS} clients: 1 replica on postgres`, `${num(pgRate, 1)}/s`, '', ''],
      ['postgres ÷ fs', ratio(pgRate / fsRate), '≥ 0.8×', verdict(pgRate / fsRate, 0.8, true)],
      [`issuance, ${NAMES} names, ${CLIENTS} clients spread: 3 active-active replicas on postgres`, `${num(threeRate, 1)}/s`, '', ''],
      ['3 replicas ÷ 1 replica on postgres', ratio(threeRate / pgRate), '≥ 1.0×', verdict(threeRate / pgRate, 1, true)],
      ['CPU per certificate, certd / PostgreSQL / HAProxy: 1 replica on fs', cpu(fs), '', ''],
      ['same: 1 replica on postgres', cpu(pg), '', ''],
      ['same: 3 active-active replicas on postgres (certd: the three together)', cpu(three), '', ''],
      ['on-demand, POST /ondemand → presented, p50: asked of the owner', ms(od.owner), '', ''],
      ['on-demand, same, asked of the replica that owns no instance', ms(od.other), '', ''],
      ['non-owner ÷ owner', ratio(od.other / od.owner), '≤ 1.2×', verdict(od.other / od.owner, 1.2)],
    ],
  );
  const failureLine = failures.size ? [...failures].map(([k, v]) => `${k}: ${v}`).join(', ') : 'none';
  console.log(`\n${table}\n\nfailures: ${failureLine}`);
  if (QUICK || ONLY !== undefined) return;
  await refreshSection(
    RESULTS,
    'ha',
    'Benchmark results',
    [
      '## High availability on PostgreSQL (`npm run bench:ha`)',
      '',
      `Run ${new Date(startedAt).toISOString()}, ${Math.round((Date.now() - startedAt) / 1000)} s, load ${load0} → ${loadAverage()}; lease ${ms(LEASE_MS)}.`,
      ...machineLines([{ name: 'postgresql', version: '15 (Debian, private initdb)' }]),
      '',
      table,
      '',
      `failures: ${failureLine}`,
    ].join('\n'),
  );
}

await main();
