/**
 * Start-up, memory and listing at N = 1,000 / 10,000 / 100,000 certificates, against a real daemon
 * (`haproxy-certd run`, built, a process of its own as in production) on an fs store seeded from
 * its local CA (bench/lib/seed-store.ts). Its one HAProxy instance never answers: what is timed is
 * the daemon's own start and listing, not runtime pushes. Per N: a first start (no metadata index
 * yet: every file parsed, the index written), then a restart (the index read and checked):
 * time until the API answers a read and until it is ready (writes taken, /healthz 200), RSS above
 * an empty daemon's; then GET /v1/certs?limit=100, the status page (first page, a search, a deep
 * page) and `list --json` (a new CLI process paging through all N); last the RSS again once the
 * daemon has idled 30 s (settled: the start's garbage collected), against an empty daemon's
 * settled RSS. Writes its section of bench/RESULTS.md.
 *
 *   npm run bench:listing            (NS=1000,10000,100000 ROUNDS=20 to change)
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { killedAtExit } from '../test/helpers/children.js';
import { freePort } from '../test/helpers/ports.js';
import { seededName } from '../test/helpers/status-certs.js';
import { loadAverage, machineLines } from './lib/machine.js';
import { refreshSection } from './lib/results.js';
import { seedStoreFast } from './lib/seed-store.js';
import { ms, num, quantile } from './lib/stats.js';
import { markdownTable, verdict } from './lib/table.js';

const NS = (process.env.NS ?? '1000,10000,100000').split(',').map(Number);
const ROUNDS = Number(process.env.ROUNDS ?? 20);
const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const RESULTS = fileURLToPath(new URL('./RESULTS.md', import.meta.url));
const TOKEN = 'listing-bench-token-0123456789abcdef';
const run = promisify(execFile);
/** The goals (#14): API answering ≤ 5 s, ≤ 2 KB per certificate, listings < 300 ms at the p50. */
const GOAL_ANSWER_MS = 5_000;
const GOAL_BYTES_PER_CERT = 2_048;
const GOAL_LIST_MS = 300;

interface Timing {
  p50: number;
  p95: number;
  bytes: number;
  n: number;
}

async function timed(rounds: number, once: () => Promise<number>): Promise<Timing> {
  await once(); // warm-up, not counted
  const samples: number[] = [];
  let bytes = 0;
  for (let i = 0; i < rounds; i++) {
    const started = performance.now();
    bytes = await once();
    samples.push(performance.now() - started);
  }
  return { p50: quantile(samples, 0.5), p95: quantile(samples, 0.95), bytes, n: rounds };
}

async function until(what: string, check: () => Promise<boolean>, boundMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check().catch(() => false)) return performance.now() - started;
    if (performance.now() - started > boundMs) throw new Error(`${what}: not within ${boundMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)![1]) * 1024;
}

interface Started {
  child: ChildProcess;
  answerMs: number;
  readyMs: number;
  rss: number;
}

/** Starts the daemon and times it: first answered read, then ready; RSS 3 s after ready. */
async function startDaemon(config: string, base: string): Promise<Started> {
  const started = performance.now();
  const child = killedAtExit(spawn(process.execPath, [CLI, '--config', config, 'run'], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, CERTD_LOG_LEVEL: 'warn' } }));
  const read = async () => (await fetch(`${base}/v1/certs?limit=1`, { headers: { authorization: `Bearer ${TOKEN}` } })).status === 200;
  await until('the daemon answering a read', read, 900_000);
  const answerMs = performance.now() - started;
  await until('the daemon ready', async () => (await fetch(`${base}/healthz`)).status === 200, 1_800_000);
  const readyMs = performance.now() - started;
  await new Promise((r) => setTimeout(r, 3_000));
  return { child, answerMs, readyMs, rss: await rssBytes(child.pid!) };
}

async function stopDaemon(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

interface Measured {
  n: number;
  first: Started;
  restart: Started;
  api: Timing;
  page: Timing;
  search: Timing;
  deep: Timing;
  list: Timing;
  /** `haproxy-certd --version`: what a new CLI process costs before it lists anything (the floor). */
  cliFloor: Timing;
  /** RSS after the listings and SETTLE_MS idle: what a running daemon keeps, once the start's garbage is collected. */
  settledRss: number;
}

/** RSS of an empty daemon, 3 s after ready and settled. */
interface Baseline {
  value?: number;
  settled?: number;
}

/** How long a daemon idles before its settled RSS is read (V8 collects and shrinks the heap of an idle process). */
const SETTLE_MS = 30_000;

async function settled(child: ChildProcess): Promise<number> {
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  return rssBytes(child.pid!);
}

async function measure(n: number, baselineRss: Baseline): Promise<Measured | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'certd-bench-listing-'));
  try {
    const seedStart = performance.now();
    await seedStoreFast(join(dir, 'data'), n);
    console.error(`N=${n}: seeded in ${ms(performance.now() - seedStart)}`);
    const listen = `127.0.0.1:${await freePort()}`;
    const config = join(dir, 'certd.yaml');
    await writeFile(config, `dataDir: ./data\nhaproxy:\n  certDir: ./certs\n  instances: [{ name: h1, runtime: "unix:${join(dir, 'absent.sock')}" }]\napi: { listen: "${listen}", token: "${TOKEN}" }\n`);
    const base = `http://${listen}`;
    const first = await startDaemon(config, base);
    if (n === 0) {
      baselineRss.value = first.rss;
      baselineRss.settled = await settled(first.child);
      await stopDaemon(first.child);
      return undefined;
    }
    console.error(`N=${n}: first start answered in ${ms(first.answerMs)}, ready in ${ms(first.readyMs)}`);
    await stopDaemon(first.child);
    const restart = await startDaemon(config, base);
    console.error(`N=${n}: restart answered in ${ms(restart.answerMs)}, ready in ${ms(restart.readyMs)}`);
    try {
      const api = await timed(ROUNDS, async () => {
        const res = await fetch(`${base}/v1/certs?limit=100`, { headers: { authorization: `Bearer ${TOKEN}` } });
        const body = (await res.json()) as { certs: unknown[] };
        if (res.status !== 200 || body.certs.length !== Math.min(100, n)) throw new Error(`GET /v1/certs?limit=100: ${res.status}`);
        return JSON.stringify(body).length;
      });
      const login = await fetch(`${base}/status/login`, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ token: TOKEN }) });
      const cookie = login.headers.getSetCookie()[0]!.split(';')[0]!;
      const statusPage = (query: string) => async () => {
        const res = await fetch(`${base}/status${query}`, { headers: { cookie } });
        if (res.status !== 200) throw new Error(`GET /status${query}: ${res.status}`);
        return (await res.arrayBuffer()).byteLength;
      };
      const page = await timed(ROUNDS, statusPage(''));
      const search = await timed(ROUNDS, statusPage(`?q=${seededName(Math.floor(n / 2) + 7)}`));
      const deep = await timed(ROUNDS, statusPage(`?page=${Math.ceil(n / 100)}`));
      // The CLI as a script runs it: a new process each time, reading every certificate from the
      // daemon's API. Timed until the process has exited with its whole output; the check that
      // it is every certificate (a JSON.parse of ~45 MB here, ~0.3 s at 100,000) is not timed.
      let lastOut = '';
      const list = await timed(n >= 100_000 ? 3 : Math.min(ROUNDS, 10), async () => {
        lastOut = (await run(process.execPath, [CLI, '--config', config, 'list', '--json'], { maxBuffer: 1024 * 1024 * 1024 })).stdout;
        return lastOut.length;
      });
      if ((JSON.parse(lastOut) as unknown[]).length !== n) throw new Error('list --json did not list every certificate');
      lastOut = '';
      const cliFloor = await timed(Math.min(ROUNDS, 10), async () => (await run(process.execPath, [CLI, '--version'])).stdout.length);
      const settledRss = await settled(restart.child);
      return { n, first, restart, api, page, search, deep, list, cliFloor, settledRss };
    } finally {
      await stopDaemon(restart.child);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const load0 = loadAverage();
  const baseline: Baseline = {};
  await measure(0, baseline);
  const results: Measured[] = [];
  for (const n of NS) results.push((await measure(n, baseline))!);
  const base = baseline.value!;
  const perCert = (m: Measured, s: Started) => (s.rss - base) / m.n;
  const settledPerCert = (m: Measured) => (m.settledRss - baseline.settled!) / m.n;
  const kib = (b: number) => `${num(b / 1024)} KiB`;
  const cells = (f: (m: Measured) => string) => results.map(f);
  const largest = results.at(-1)!;
  const rows = [
    ['first start (no index): API answers a read', ...cells((m) => ms(m.first.answerMs)), `≤ ${GOAL_ANSWER_MS / 1000} s`, '—'],
    ['first start: ready (writes taken, /healthz 200)', ...cells((m) => ms(m.first.readyMs)), '—', '—'],
    ['restart (index): API answers a read', ...cells((m) => ms(m.restart.answerMs)), `≤ ${GOAL_ANSWER_MS / 1000} s`, verdict(largest.restart.answerMs, GOAL_ANSWER_MS)],
    ['restart: ready (writes taken, /healthz 200)', ...cells((m) => ms(m.restart.readyMs)), '—', '—'],
    ['RSS above an empty daemon, per certificate (restart, 3 s after ready)', ...cells((m) => `${num(perCert(m, m.restart))} B`), `≤ ${GOAL_BYTES_PER_CERT} B`, verdict(perCert(largest, largest.restart), GOAL_BYTES_PER_CERT)],
    [`RSS above an empty daemon, per certificate (settled: after the listings and ${SETTLE_MS / 1000} s idle, both)`, ...cells((m) => `${num(settledPerCert(m))} B`), `≤ ${GOAL_BYTES_PER_CERT} B`, verdict(settledPerCert(largest), GOAL_BYTES_PER_CERT)],
    ['RSS, whole daemon (restart)', ...cells((m) => `${num(m.restart.rss / 1_048_576)} MiB`), '—', '—'],
    ['`GET /v1/certs?limit=100`, p50', ...cells((m) => ms(m.api.p50)), `< ${GOAL_LIST_MS} ms`, verdict(largest.api.p50, GOAL_LIST_MS)],
    ['status page, first page (50 rows), p50', ...cells((m) => ms(m.page.p50)), `< ${GOAL_LIST_MS} ms`, verdict(largest.page.p50, GOAL_LIST_MS)],
    ['status page, search (1 match), p50', ...cells((m) => ms(m.search.p50)), `< ${GOAL_LIST_MS} ms`, verdict(largest.search.p50, GOAL_LIST_MS)],
    ['status page, page N/100, p50', ...cells((m) => ms(m.deep.p50)), `< ${GOAL_LIST_MS} ms`, verdict(largest.deep.p50, GOAL_LIST_MS)],
    ['`list --json`, all N (new process), p50', ...cells((m) => ms(m.list.p50)), `< ${GOAL_LIST_MS} ms`, verdict(largest.list.p50, GOAL_LIST_MS)],
    ['`haproxy-certd --version` (new process: the floor of any CLI call), p50', ...cells((m) => ms(m.cliFloor.p50)), '—', '—'],
    ['`list --json` output', ...cells((m) => kib(m.list.bytes)), '—', '—'],
    ['status page size (first page)', ...cells((m) => kib(m.page.bytes)), '—', '—'],
  ];
  const section = [
    `## Start-up, memory and listing at ${NS.map((n) => n.toLocaleString('en-US')).join(' / ')} certificates (\`bench/listing.ts\`)`,
    '',
    `Run ${new Date(startedAt).toISOString()} · \`npm run bench:listing\` (NS=${NS.join(',')} ROUNDS=${ROUNDS}) · ${Math.round((Date.now() - startedAt) / 1000)} s in all`,
    '',
    ...machineLines(),
    `- load average (1 min) at start / end: ${load0} / ${loadAverage()}`,
    `- empty daemon's RSS (the baseline): ${num(base / 1_048_576)} MiB`,
    '',
    markdownTable(['measure', ...NS.map((n) => `N = ${n.toLocaleString('en-US')}`), 'goal (#14)', `at N = ${largest.n.toLocaleString('en-US')}`], rows),
    '',
    `Timings are p50 of ${ROUNDS} requests after one warm-up (\`list --json\`: ${Math.min(ROUNDS, 10)}, 3 at 100,000; until the process exits, its output checked after the clock), wall time from`,
    'this process to the whole body. The daemon (`haproxy-certd run`, built) runs in its own process; its one',
    'HAProxy instance never answers (so no certificate is "pending" and the status page asks the deployer',
    'nothing per certificate: with instances up it adds `deployedOn` per certificate). Start times run from spawning the process; "answers a read" is the first',
    '200 to `GET /v1/certs?limit=1` (reads are served from the catalog while the stored certificates are',
    'deployed), "ready" the first 200 from `/healthz`. RSS is read from /proc 3 s after ready. The store is',
    'seeded with 90 local-CA leaves spread over 2–91 days left, certificate i carrying leaf i % 90 (bench/lib/seed-store.ts).',
  ].join('\n');
  await refreshSection(RESULTS, 'listing', 'Benchmark results', section);
  console.log(section);
}

await main();
