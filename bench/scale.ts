/**
 * Scale (issue #14): one daemon process (`haproxy-certd run`, the built CLI, as in production) with
 * N certificates from the local CA and two real HAProxy instances, at N = 1,000, 10,000 and
 * 100,000 (`--sizes 1000,10000` for fewer). Per N, in one run:
 *
 *  - ingest: N names through `POST /v1/certs`, 32 clients at once → certificates per second;
 *  - one update at N: `POST /v1/certs` of one new name until a handshake presents it (p50/p95),
 *    with both instances up, then with the second one stopped (ratio, goal ≤ 1.2×);
 *  - listing: `list --json` (the CLI process), `GET /v1/certs`, `GET /v1/certs?limit=100`, the
 *    status page's data (`GET /status/data`, the page's model; p50 of 5);
 *  - idle: CPU seconds of the daemon and of each HAProxy worker over IDLE seconds with nothing
 *    changing (goal < 2 % of one core each), the deployer reconciling every RECONCILE_S seconds;
 *  - reconcile pass at N (nothing drifted): runtime commands it sent to each instance and the
 *    certificates it read one by one (from `/v1/status` `lastReconcile`; goal: independent of N),
 *    the busiest HAProxy worker's CPU per pass (idle CPU ÷ passes, an upper bound), and the
 *    fewest certificates `status` reported in sync while the next pass ran (goal: never fewer);
 *  - restart: SIGTERM, start again: until the API answers, until both instances report nothing
 *    pending; the daemon's RSS then, per certificate above its RSS with none stored;
 *  - fresh instance: a plain HAProxy's cold start from the daemon's files (start → serving), then
 *    the second instance restarted on a default-only crt-list, timed until the daemon reports it
 *    serves half, then all N over the runtime API (goal ≤ 1.0× the cold start; the runtime API's
 *    own floor beside the cold start: bench/sync-floor.ts);
 *
 * Failures are counted per step and printed; the bench always finishes. A full run (the three
 * sizes above) refreshes the scale section of bench/RESULTS.md; other `--sizes` and `--quick`
 * (N = 300, short idle) only print.
 *
 * Run: npm run bench:scale            (N = 1,000, 10,000 and 100,000: the full run)
 *      npm run bench:scale -- --sizes 1000,10000
 *      npm run bench:scale -- --quick
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { handshake } from '../test/helpers/tls.js';
import { stopChild } from '../test/helpers/children.js';
import { freePort } from '../test/helpers/ports.js';
import { pool } from './lib/handshakes.js';
import { startIn, startPlainHaproxy, type PlainHaproxy } from './lib/instance.js';
import { cpuSeconds, loadAverage, machineLines } from './lib/machine.js';
import { waitForQuiet } from './lib/quiet.js';
import { refreshSection } from './lib/results.js';
import { median, ms, num, quantile, ratio } from './lib/stats.js';
import { markdownTable, verdict } from './lib/table.js';

const QUICK = process.argv.includes('--quick');
const sizesArg = process.argv[process.argv.indexOf('--sizes') + 1];
/** The issue's sizes (#14): the only run that refreshes bench/RESULTS.md. */
const FULL_SIZES = [1_000, 10_000, 100_000];
const SIZES = process.argv.includes('--sizes') && sizesArg ? sizesArg.split(',').map(Number) : QUICK ? [300] : FULL_SIZES;
const FULL_RUN = !QUICK && SIZES.join() === FULL_SIZES.join();
const INGEST_CLIENTS = 32;
const SINGLES = QUICK ? 10 : 30;
const LISTINGS = 5;
const IDLE_S = QUICK ? 15 : 180;
/** The deployer's drift-repair period in this bench (the config's example value in a full run). */
const RECONCILE_S = QUICK ? 5 : 60;
const START_WAIT_MS = 600_000;
const SERVED_WAIT_MS = 60_000;
/**
 * How often /v1/status is asked while a fresh instance syncs (the figure's resolution): 25 ms at
 * 300, 100 ms at 10,000 (each answer counts every certificate per instance: polled too often it
 * would slow the daemon it measures).
 */
const freshPollMs = (n: number) => Math.max(25, n / 100);
const HAPROXY_START_MS = 600_000;
const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const RESULTS_FILE = fileURLToPath(new URL('./RESULTS.md', import.meta.url));
const TOKEN = 'bench-scale-token';
const run = promisify(execFile);

/** Failures per step: printed, never thrown past the step. */
const failures = new Map<string, number>();
function fail(step: string, err: unknown): void {
  failures.set(step, (failures.get(step) ?? 0) + 1);
  if ((failures.get(step) ?? 0) <= 3) console.error(`# ${step}: ${err instanceof Error ? err.message : String(err)}`);
}

interface SizeResult {
  n: number;
  ingestPerS: number;
  singleMs: number[];
  singleOneDownMs: number[];
  listCliMs: number[];
  certsAllMs: number[];
  certsPageMs: number[];
  statusPageMs: number[];
  idleDaemonCpuS: number;
  idleHaproxyCpuS: number[];
  restartApiMs: number;
  restartReconciledMs: number;
  rssBaseKb: number;
  rssKb: number;
  /** Per instance, the last periodic pass of the idle window. */
  reconcile: { commands: number; certsRead: number; ms: number }[];
  reconcilePasses: number;
  /** Fewest certificates any up instance was reported serving while a pass ran. */
  reconcileMinInSync: number;
  coldStartMs: number;
  freshSyncMs: number;
  /** Until the fresh instance served half the names (a cold start serves none before all). */
  freshHalfMs: number;
  /** HAProxy CPU seconds (master + worker): of the cold start, of the fresh instance until in sync. */
  coldCpuS: number;
  freshCpuS: number;
  /** The daemon's CPU seconds while the fresh instance synced (from its worker's first answer). */
  freshDaemonCpuS: number;
}

interface InstanceView {
  name: string;
  state: string;
  pending: number;
  inSync: number;
  pid?: number;
  commands?: number;
  reconciles?: number;
  lastReconcile?: { at: string; ms: number; commands: number; certsRead: number };
}

class DaemonProcess {
  private child?: ChildProcess;
  constructor(
    readonly configFile: string,
    readonly api: string,
  ) {}

  get pid(): number {
    return this.child?.pid ?? 0;
  }

  /**
   * Starts `run`; resolves with the ms until the API answered /v1/status (not 503: reads are
   * answered during the start), then waits until it takes writes too (/healthz 200).
   */
  async start(): Promise<number> {
    const t0 = performance.now();
    this.child = spawn(process.execPath, [CLI, '--config', this.configFile, 'run'], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, CERTD_LOG_LEVEL: 'warn' },
    });
    const answered = (await this.until('/v1/status', t0)) - t0;
    await this.until('/healthz', t0);
    return answered;
  }

  /** Until `path` answers 200; the time it did. */
  private async until(path: string, t0: number): Promise<number> {
    const deadline = t0 + START_WAIT_MS;
    for (;;) {
      if (this.child!.exitCode !== null) throw new Error(`the daemon exited (${this.child!.exitCode}) while starting`);
      const res = await this.request('GET', path).catch(() => undefined);
      if (res?.status === 200) return performance.now();
      if (performance.now() > deadline) throw new Error(`the daemon's ${path} did not answer 200 within ${START_WAIT_MS} ms`);
      await sleep(50);
    }
  }

  async stop(): Promise<void> {
    // A minute's grace: at 100,000 the daemon's stop flushes and closes a large store.
    if (this.child) await stopChild(this.child, 'SIGTERM', 60_000);
  }

  request(method: string, path: string, body?: unknown): Promise<Response> {
    return fetch(`${this.api}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(300_000),
    });
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request(method, path, body);
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 200)}`);
    return JSON.parse(text) as T;
  }

  async instances(): Promise<InstanceView[]> {
    return (await this.json<{ instances: InstanceView[] }>('GET', '/v1/status')).instances;
  }

  /**
   * Until every instance is up with nothing pending (and at least `inSync` served; with `pid`, as
   * that worker: a restart is not seen before the daemon's next poll); ms waited.
   */
  async reconciled(inSync: number, only?: string[], pid?: number): Promise<number> {
    const t0 = performance.now();
    for (;;) {
      const s = await this.json<{ instances: InstanceView[] }>('GET', '/v1/status').catch(() => undefined);
      const ours = s?.instances.filter((i) => !only || only.includes(i.name)) ?? [];
      if (ours.length > 0 && ours.every((i) => i.state === 'up' && i.pending === 0 && i.inSync >= inSync && (pid === undefined || i.pid === pid))) return performance.now() - t0;
      if (performance.now() - t0 > START_WAIT_MS) throw new Error(`instances not reconciled within ${START_WAIT_MS} ms: ${JSON.stringify(ours)}`);
      await sleep(100);
    }
  }
}

interface Instance extends PlainHaproxy {
  name: string;
}

async function sleep(msToWait: number): Promise<void> {
  await new Promise((r) => setTimeout(r, msToWait));
}


async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? Number.NaN);
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Repeats `fn` `times`, each timed; a failed call is counted under `step` and not timed. */
async function samples(step: string, times: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < times; i++) {
    try {
      out.push(await timed(() => fn(i)));
    } catch (err) {
      fail(step, err);
    }
  }
  return out;
}

/** POST one new name, then handshakes on `port` until its serial is presented. */
async function oneUpdate(d: DaemonProcess, port: number, name: string): Promise<void> {
  const res = await d.json<{ cert: { serial: string } }>('POST', '/v1/certs', { names: [name] });
  const deadline = performance.now() + SERVED_WAIT_MS;
  for (;;) {
    const served = await handshake(port, name, { timeoutMs: 5_000 }).catch(() => undefined);
    if (served?.serial.toLowerCase() === res.cert.serial.toLowerCase()) return;
    if (performance.now() > deadline) throw new Error(`${name}: serial ${res.cert.serial} not served within ${SERVED_WAIT_MS} ms`);
    await new Promise((r) => setImmediate(r));
  }
}

/** A plain HAProxy in `<dir>/<name>/` (its admin socket where the daemon's config names it) on the daemon's crt-list. */
async function startInstance(dir: string, name: string, crtList: string): Promise<Instance> {
  const own = join(dir, name);
  await mkdir(own, { recursive: true });
  return { name, ...(await startIn(own, crtList, HAPROXY_START_MS)) };
}

async function measure(n: number): Promise<SizeResult> {
  const dir = await mkdtemp(join(tmpdir(), 'certd-bench-scale-'));
  const apiPort = await freePort();
  const certDir = join(dir, 'certs');
  const crtList = join(certDir, 'crt-list.txt');
  const configFile = join(dir, 'certd.yaml');
  const names = ['h1', 'h2'];
  await writeFile(
    configFile,
    `dataDir: ./data
haproxy:
  instances:
${names.map((h) => `    - { name: ${h}, runtime: "unix:${join(dir, h, 'admin.sock')}" }`).join('\n')}
  certDir: ./certs
  crtList: ./certs/crt-list.txt
  reconcileEvery: ${RECONCILE_S}s
issuers:
  local: { type: local-ca, keyType: ecdsa-p256, validity: 90d }
api: { listen: "127.0.0.1:${apiPort}", token: ${TOKEN} }
`,
  );
  const daemon = new DaemonProcess(configFile, `http://127.0.0.1:${apiPort}`);
  const instances: Instance[] = [];
  const r: SizeResult = {
    n,
    ingestPerS: Number.NaN,
    singleMs: [],
    singleOneDownMs: [],
    listCliMs: [],
    certsAllMs: [],
    certsPageMs: [],
    statusPageMs: [],
    idleDaemonCpuS: Number.NaN,
    idleHaproxyCpuS: [],
    restartApiMs: Number.NaN,
    restartReconciledMs: Number.NaN,
    rssBaseKb: Number.NaN,
    rssKb: Number.NaN,
    reconcile: [],
    reconcilePasses: Number.NaN,
    reconcileMinInSync: Number.NaN,
    coldStartMs: Number.NaN,
    freshSyncMs: Number.NaN,
    freshHalfMs: Number.NaN,
    coldCpuS: Number.NaN,
    freshCpuS: Number.NaN,
    freshDaemonCpuS: Number.NaN,
  };
  const say = (line: string) => console.log(`# N=${num(n)}: ${line} (load ${loadAverage()})`);
  try {
    await daemon.start();
    for (const h of names) instances.push(await startInstance(dir, h, crtList));
    await daemon.reconciled(0);
    r.rssBaseKb = await rssKb(daemon.pid);

    const t0 = performance.now();
    let ingested = 0;
    await pool(
      Array.from({ length: n }, (_, i) => `c${i}.scale.test`),
      INGEST_CLIENTS,
      async (name) => {
        try {
          await daemon.json('POST', '/v1/certs', { names: [name] });
          ingested++;
        } catch (err) {
          fail('ingest', err);
        }
      },
    );
    r.ingestPerS = ingested / ((performance.now() - t0) / 1000);
    say(`ingested ${num(ingested)} at ${num(r.ingestPerS, 1)}/s`);
    await daemon.reconciled(ingested);

    r.singleMs = await samples('one update (both up)', SINGLES, (i) => oneUpdate(daemon, instances[0]!.tlsPort, `single${i}.scale.test`));
    say(`one update p50 ${ms(median(r.singleMs))}`);

    r.listCliMs = await samples('list --json', LISTINGS, () => run(process.execPath, [CLI, '--config', configFile, 'list', '--json'], { maxBuffer: 1 << 30 }));
    r.certsAllMs = await samples('GET /v1/certs', LISTINGS, () => daemon.json('GET', '/v1/certs'));
    r.certsPageMs = await samples('GET /v1/certs?limit=100', LISTINGS, () => daemon.json('GET', '/v1/certs?limit=100'));
    r.statusPageMs = await samples('status page', LISTINGS, async () => {
      const res = await daemon.request('GET', '/status/data');
      await res.text();
      if (!res.ok) throw new Error(`status page: ${res.status}`);
    });
    say(`list --json p50 ${ms(median(r.listCliMs))}, status page p50 ${ms(median(r.statusPageMs))}`);

    const workers = await Promise.all(instances.map((i) => i.haproxy.workerPid()));
    const passesBefore = await daemon.instances();
    const before = await Promise.all([daemon.pid, ...workers].map(cpuSeconds));
    await sleep(IDLE_S * 1000);
    const after = await Promise.all([daemon.pid, ...workers].map(cpuSeconds));
    const passesAfter = await daemon.instances();
    r.idleDaemonCpuS = after[0]! - before[0]!;
    r.idleHaproxyCpuS = workers.map((_, i) => after[i + 1]! - before[i + 1]!);
    say(`idle ${IDLE_S} s: daemon ${num(r.idleDaemonCpuS, 2)} CPU s, HAProxy ${r.idleHaproxyCpuS.map((s) => num(s, 2)).join(' / ')}`);
    await measureReconcile(daemon, passesBefore, passesAfter, r);
    say(`reconcile pass: ${r.reconcile.map((p) => `${p.commands} commands, ${p.certsRead} read, ${ms(p.ms)}`).join(' / ')}; ${r.reconcilePasses} passes while idle; fewest in sync during a pass ${num(r.reconcileMinInSync)}`);

    await daemon.stop();
    r.restartApiMs = await daemon.start();
    r.restartReconciledMs = r.restartApiMs + (await daemon.reconciled(ingested));
    r.rssKb = await rssKb(daemon.pid);
    say(`restart: API ${ms(r.restartApiMs)}, reconciled ${ms(r.restartReconciledMs)}, RSS ${num(r.rssKb / 1024, 1)} MiB`);

    await measureFreshSync(daemon, dir, instances, crtList, ingested, r);
    say(`fresh instance: plain HAProxy cold start ${ms(r.coldStartMs)}, certd full sync ${ms(r.freshSyncMs)} (half served at ${ms(r.freshHalfMs)}); HAProxy CPU ${num(r.freshCpuS, 2)} s vs ${num(r.coldCpuS, 2)} s, daemon ${num(r.freshDaemonCpuS, 2)} s`);

    await instances[1]!.haproxy.stop();
    const downSince = performance.now();
    // The deployer notices at its next push or probe: one update first, not timed.
    await oneUpdate(daemon, instances[0]!.tlsPort, 'notice-down.scale.test').catch((err) => fail('one update (one down)', err));
    r.singleOneDownMs = await samples('one update (one down)', SINGLES, (i) => oneUpdate(daemon, instances[0]!.tlsPort, `down${i}.scale.test`));
    say(`one update, one of two down, p50 ${ms(median(r.singleOneDownMs))} (${ms(performance.now() - downSince)} in all)`);
  } catch (err) {
    fail(`N=${n}`, err);
  } finally {
    await daemon.stop().catch((err) => fail('stop daemon', err));
    for (const i of instances) await i.stop();
    await rm(dir, { recursive: true, force: true });
  }
  return r;
}

/**
 * From the idle window's passes: each instance's last pass (commands, certificates read), how many
 * passes ran; then /v1/status polled through the next pass for the fewest reported in sync.
 */
async function measureReconcile(daemon: DaemonProcess, before: InstanceView[], after: InstanceView[], r: SizeResult): Promise<void> {
  try {
    r.reconcile = after.map((i) => i.lastReconcile ?? { commands: Number.NaN, certsRead: Number.NaN, ms: Number.NaN });
    r.reconcilePasses = Math.min(...after.map((i, k) => (i.reconciles ?? Number.NaN) - (before[k]?.reconciles ?? Number.NaN)));
    const last = new Map(after.map((i) => [i.name, i.lastReconcile?.at]));
    let fewest = Number.POSITIVE_INFINITY;
    const deadline = performance.now() + (RECONCILE_S + 30) * 1000;
    for (;;) {
      const now = await daemon.instances();
      for (const i of now) if (i.state === 'up') fewest = Math.min(fewest, i.inSync);
      if (now.every((i) => i.lastReconcile?.at !== last.get(i.name))) break;
      if (performance.now() > deadline) throw new Error(`no reconcile pass within ${RECONCILE_S + 30} s`);
      // /v1/status lists every certificate too: at 10,000 and more, poll it gently.
      await sleep(r.n >= 10_000 ? 1_000 : 200);
    }
    r.reconcileMinInSync = fewest;
  } catch (err) {
    fail('reconcile pass', err);
  }
}

/**
 * A plain HAProxy's cold start from the daemon's files, then the second instance started again on a
 * default-only crt-list (the full one put back at once: the files stay the truth) and timed until
 * the daemon reports it serves all `n` over the runtime API.
 */
async function measureFreshSync(daemon: DaemonProcess, dir: string, instances: Instance[], crtList: string, n: number, r: SizeResult): Promise<void> {
  try {
    const t0 = performance.now();
    const plain = await startPlainHaproxy(crtList, { startTimeoutMs: HAPROXY_START_MS });
    r.coldStartMs = performance.now() - t0;
    // The master loads the files before it forks the worker: its CPU is the cold start's.
    r.coldCpuS = (await cpuSeconds(plain.haproxy.masterPid!)) + (await cpuSeconds(await plain.haproxy.workerPid()));
    await plain.stop();
    const second = instances[1]!;
    await second.stop();
    const full = await readFile(crtList, 'utf8');
    const defaultOnly = full.split('\n').filter((l) => l.startsWith('#') || l.includes('_default.pem')).join('\n') + '\n';
    await replaceFile(crtList, defaultOnly);
    const t1 = performance.now();
    let fresh: Instance;
    try {
      fresh = await startInstance(dir, second.name, crtList);
    } finally {
      await replaceFile(crtList, full);
    }
    instances[1] = fresh;
    const pid = await fresh.haproxy.workerPid();
    const daemonCpu0 = await cpuSeconds(daemon.pid);
    // Polled often (the sync of 300 takes a few hundred ms): when half the names are served, then all.
    for (;;) {
      const i = (await daemon.instances().catch(() => [])).find((x) => x.name === second.name);
      const ours = i?.state === 'up' && i.pid === pid;
      if (ours && Number.isNaN(r.freshHalfMs) && i.inSync >= n / 2) r.freshHalfMs = performance.now() - t1;
      if (ours && i.pending === 0 && i.inSync >= n) break;
      if (performance.now() - t1 > START_WAIT_MS) throw new Error(`the fresh instance was not in sync within ${START_WAIT_MS} ms: ${JSON.stringify(i)}`);
      await sleep(freshPollMs(n));
    }
    r.freshSyncMs = performance.now() - t1;
    // CPU, unlike wall time, does not move with the other load on this shared machine.
    r.freshCpuS = (await cpuSeconds(fresh.haproxy.masterPid!)) + (await cpuSeconds(pid));
    r.freshDaemonCpuS = (await cpuSeconds(daemon.pid)) - daemonCpu0;
  } catch (err) {
    fail('fresh instance', err);
  }
}

/** Writes `path` as a whole (temp file + rename), as the daemon does: HAProxy never reads half of it. */
async function replaceFile(path: string, text: string): Promise<void> {
  await writeFile(`${path}.bench-tmp`, text);
  await rename(`${path}.bench-tmp`, path);
}

function report(results: SizeResult[]): string {
  const col = (f: (r: SizeResult) => string) => results.map(f);
  const first = results[0]!;
  const last = results[results.length - 1]!;
  const perCertKb = (r: SizeResult) => (r.rssKb - r.rssBaseKb) / r.n;
  const idlePct = (s: number) => (s / IDLE_S) * 100;
  const rows: string[][] = [
    ['ingest through `POST /v1/certs` (32 clients)', ...col((r) => `${num(r.ingestPerS, 0)} /s`), 'goal ≥ 1,000 /s', verdict(last.ingestPerS, 1_000, true)],
    ['one update → served, p50', ...col((r) => ms(median(r.singleMs))), 'goal ≤ 5 ms', verdict(median(last.singleMs), 5)],
    ['one update → served, p95', ...col((r) => ms(quantile(r.singleMs, 0.95))), '', ''],
    [`one update p50, largest ÷ smallest N`, ...col((r) => ratio(median(r.singleMs) / median(first.singleMs))), 'goal ≤ 1.3×', verdict(median(last.singleMs) / median(first.singleMs), 1.3)],
    ['one update p50, one of two instances down ÷ both up', ...col((r) => ratio(median(r.singleOneDownMs) / median(r.singleMs))), 'goal ≤ 1.2×', verdict(median(last.singleOneDownMs) / median(last.singleMs), 1.2)],
    ['`list --json` (CLI process), p50', ...col((r) => ms(median(r.listCliMs))), 'goal < 300 ms', verdict(median(last.listCliMs), 300)],
    ['`GET /v1/certs` (all), p50', ...col((r) => ms(median(r.certsAllMs))), '', ''],
    ['`GET /v1/certs?limit=100`, p50', ...col((r) => ms(median(r.certsPageMs))), 'goal < 300 ms', verdict(median(last.certsPageMs), 300)],
    ['status page, p50', ...col((r) => ms(median(r.statusPageMs))), 'goal < 300 ms', verdict(median(last.statusPageMs), 300)],
    [`idle ${IDLE_S} s: daemon CPU, % of a core`, ...col((r) => `${num(idlePct(r.idleDaemonCpuS), 2)} %`), 'goal < 2 %', verdict(idlePct(last.idleDaemonCpuS), 2)],
    [`idle ${IDLE_S} s: busiest HAProxy worker CPU, % of a core`, ...col((r) => `${num(idlePct(Math.max(...r.idleHaproxyCpuS)), 2)} %`), 'goal < 2 %', verdict(idlePct(Math.max(...last.idleHaproxyCpuS)), 2)],
    ['reconcile pass, nothing drifted: runtime commands per instance', ...col((r) => r.reconcile.map((p) => num(p.commands)).join(' / ')), 'goal: same at every N', verdict(Math.max(...last.reconcile.map((p) => p.commands)), Math.max(...first.reconcile.map((p) => p.commands)))],
    ['reconcile pass: certificates read one by one', ...col((r) => r.reconcile.map((p) => num(p.certsRead)).join(' / ')), 'goal 0', verdict(Math.max(...last.reconcile.map((p) => p.certsRead)), 0)],
    ['reconcile pass: duration (daemon side)', ...col((r) => r.reconcile.map((p) => ms(p.ms)).join(' / ')), '', ''],
    ['reconcile pass: busiest HAProxy worker CPU per pass (idle CPU ÷ passes)', ...col((r) => `${num((Math.max(...r.idleHaproxyCpuS) / r.reconcilePasses) * 1000, 0)} ms`), '', ''],
    ['`status` during a pass: fewest reported in sync ÷ N', ...col((r) => ratio(r.reconcileMinInSync / r.n)), 'goal ≥ 1.0×', verdict(last.reconcileMinInSync / last.n, 1, true)],
    ['fresh instance: plain HAProxy cold start from the files', ...col((r) => ms(r.coldStartMs)), '', ''],
    ['fresh instance: certd full sync over the runtime API', ...col((r) => ms(r.freshSyncMs)), '', ''],
    ['fresh instance full sync ÷ cold start', ...col((r) => ratio(r.freshSyncMs / r.coldStartMs)), 'goal ≤ 1.0×', verdict(last.freshSyncMs / last.coldStartMs, 1)],
    ['fresh instance: HAProxy CPU, full sync ÷ cold start (master + worker)', ...col((r) => `${ratio(r.freshCpuS / r.coldCpuS)} (${num(r.freshCpuS, 2)} / ${num(r.coldCpuS, 2)} s)`), '', ''],
    ['fresh instance: daemon CPU during the sync', ...col((r) => `${num(r.freshDaemonCpuS, 2)} s`), '', ''],
    ['fresh instance: half the names served ÷ cold start (which serves none before all)', ...col((r) => ratio(r.freshHalfMs / r.coldStartMs)), '', ''],
    ['restart: API answering', ...col((r) => ms(r.restartApiMs)), 'goal ≤ 5 s', verdict(last.restartApiMs, 5_000)],
    ['restart: both instances reconciled', ...col((r) => ms(r.restartReconciledMs)), 'goal ≤ 30 s', verdict(last.restartReconciledMs, 30_000)],
    ['daemon RSS above none stored, per certificate', ...col((r) => `${num(perCertKb(r), 2)} KiB`), 'goal ≤ 2 KiB', verdict(perCertKb(last), 2)],
  ];
  return markdownTable(['measure', ...results.map((r) => `N = ${num(r.n)}`), 'goal', `at N = ${num(last.n)}`], rows);
}

async function main(): Promise<void> {
  await waitForQuiet((line) => console.log(`# ${line}`));
  const results: SizeResult[] = [];
  for (const n of SIZES) results.push(await measure(n));
  const table = report(results);
  const failed = [...failures].map(([step, count]) => `${step}: ${count}`).join(', ') || 'none';
  console.log(`\n${table}\n\nfailures: ${failed}`);
  if (!FULL_RUN) return;
  await refreshSection(
    RESULTS_FILE,
    'scale',
    'Benchmark results',
    `## Scale: N certificates in one daemon (\`npm run bench:scale\`, ${new Date().toISOString().slice(0, 10)})

${machineLines().join('\n')}
- one daemon process (\`haproxy-certd run\`, built), local CA (ECDSA P-256), two HAProxy instances on one crt-list;
  ${SINGLES} single updates and ${LISTINGS} listings per N, idle ${IDLE_S} s; load average at the end ${loadAverage()}

${table}

Failures: ${failed}.`,
  );
}

await main();
