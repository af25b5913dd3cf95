/**
 * Deploy throughput and latency against real HAProxy, each path side by side in the same run:
 *
 *  - floor: HAProxy's own cost — the four runtime commands per certificate, request/response on
 *    ONE prompt session (bench/lib/floor.ts);
 *  - certd: Deployer.upsert of all N entries into a fresh instance (PEM files + crt-list written
 *    atomically, and pushed), with its runtime push window (from the deployer's per-operation
 *    metrics) and the same file writes timed alone; then per-certificate latency (upsert of one new
 *    certificate while N are served);
 *  - reload: the same one-certificate update done the classic way — write the PEM and the
 *    crt-list, reload (SIGUSR2 to the master), wait until the new worker serves the certificate.
 *
 * Every instance is a fresh `haproxy -W` (ManagedHaproxy) in a temp dir on loopback. Leaves are
 * ECDSA P-256 from the local CA, made before any timing. Prints a table of medians and ratios and,
 * on a full run, refreshes the generated block of bench/RESULTS.md.
 *
 * Run: npm run bench:deploy            (N = 1,000 and 10,000; a few minutes on 2 cores)
 *      npm run bench:deploy -- --quick (N = 1,000 only; prints, does not touch RESULTS.md)
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../src/core/log.js';
import { Deployer, type DeployOutcome } from '../src/haproxy/deploy/deployer.js';
import type { DeployEntry } from '../src/haproxy/deploy/entry.js';
import type { DeployMetrics } from '../src/haproxy/deploy/metrics.js';
import { haproxyBinary } from '../src/haproxy/managed/managed-haproxy.js';
import { handshake } from '../test/helpers/tls.js';
import { timeFilesAlone } from './lib/files-alone.js';
import { RawPusher } from './lib/floor.js';
import { startBenchHaproxy, type BenchHaproxy } from './lib/instance.js';
import { entriesFor, makeLeaves, type Leaf } from './lib/leaves.js';
import { refreshGenerated } from './lib/results.js';
import { median, ms, num, quantile, ratio } from './lib/stats.js';

const QUICK = process.argv.includes('--quick');
const SIZES = QUICK ? [1_000] : [1_000, 10_000];
/** Bulk rounds per size, floor and certd alternating who goes first (noisy 2-core machine). */
const ROUNDS: Record<number, number> = { 1_000: 5, 10_000: 3 };
/** One-at-a-time upserts timed on an instance already serving N. */
const SINGLES = 200;
/** One-PEM + crt-list rewrites timed alone (each rewrites the whole list: tens of ms at 10,000). */
const FILES_ALONE_SINGLES = 50;
/** Reloads timed per size: each one at 10,000 re-reads every PEM (seconds each). */
const RELOADS: Record<number, number> = { 1_000: 5, 10_000: 3 };
const BULK_TIMEOUT_MS = 900_000;
const SERVED_TIMEOUT_MS = 120_000;
const GOAL_FLOOR_RATIO = 1.3;
const GOAL_RELOAD_RATIO = 100;
const RESULTS_FILE = fileURLToPath(new URL('./RESULTS.md', import.meta.url));

interface BulkRun {
  totalMs: number;
}

interface CertdBulkRun extends BulkRun {
  /** From the call to the first runtime command (the files, if the deployer writes them first). */
  beforePushMs: number;
  /** From the first runtime command to the last one answered. */
  pushMs: number;
  /** The same file writes timed alone right after, in a scratch dir (DeployFiles). */
  filesAloneMs: number;
}

interface SizeResult {
  n: number;
  floor: BulkRun[];
  certd: CertdBulkRun[];
  floorSingleMs: number[];
  certdSingleMs: number[];
  /** Of certdSingleMs: from the call to the first runtime command. */
  certdSingleBeforePushMs: number[];
  /** Of certdSingleMs: from the first runtime command to the last reply. */
  certdSinglePushMs: number[];
  /** One PEM + the crt-list rewrite, timed alone (DeployFiles). */
  filesAloneSingleMs: number[];
  reloadMs: number[];
  /** Of reloadMs: until ManagedHaproxy.reload() resolved (the new worker answers). */
  reloadWorkerMs: number[];
  rssBeforeKb: number;
  rssRuntimeKb: number;
  rssReloadedKb: number;
}

/** Records when the deployer's runtime work began and ended (it reports every operation). */
class PushClock implements DeployMetrics {
  first = Number.NaN;
  last = Number.NaN;
  ops = 0;

  reset(): void {
    this.first = Number.NaN;
    this.last = Number.NaN;
    this.ops = 0;
  }

  observe(_instance: string, _op: string, startedMs: number): void {
    if (this.ops === 0) this.first = startedMs;
    this.last = performance.now();
    this.ops++;
  }

  error(): void {}
  instanceUp(): void {}
  instanceGone(): void {}
}

function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

function serialOf(leaf: Leaf): string {
  return new X509Certificate(leaf.bundle.certPem).serialNumber.toLowerCase();
}

async function expectServed(h: BenchHaproxy, leaf: Leaf): Promise<void> {
  const served = await handshake(h.tlsPort, leaf.name);
  if (served.serial !== serialOf(leaf)) throw new Error(`${leaf.name}: HAProxy served serial ${served.serial}, not the new certificate`);
}

/** Polls TLS handshakes until `leaf` is what HAProxy presents for its name. */
async function waitServed(h: BenchHaproxy, leaf: Leaf): Promise<void> {
  const want = serialOf(leaf);
  const deadline = performance.now() + SERVED_TIMEOUT_MS;
  for (;;) {
    try {
      if ((await handshake(h.tlsPort, leaf.name, { timeoutMs: 2_000 })).serial === want) return;
    } catch {
      // The listener may be between workers for an instant: keep polling until the deadline.
    }
    if (performance.now() > deadline) throw new Error(`${leaf.name} not served ${SERVED_TIMEOUT_MS} ms after the reload`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function mustSucceed(what: string, outcome: DeployOutcome): void {
  if (outcome.ok.length !== 1 || outcome.failed.length > 0) throw new Error(`${what}: ${JSON.stringify(outcome)}`);
}

async function floorRun(defaultLeaf: Leaf, bulk: Leaf[], singles: Leaf[] | undefined, r: SizeResult): Promise<void> {
  const h = await startBenchHaproxy(defaultLeaf.bundle);
  try {
    const entries = entriesFor(h.certDir, bulk);
    const raw = await RawPusher.open(h.runtime, h.crtList);
    try {
      const t0 = performance.now();
      for (const e of entries) await raw.add(e);
      r.floor.push({ totalMs: performance.now() - t0 });
      await expectServed(h, bulk.at(-1)!);
      if (!singles) return;
      for (const e of entriesFor(h.certDir, singles)) {
        const s0 = performance.now();
        await raw.add(e);
        r.floorSingleMs.push(performance.now() - s0);
      }
      await expectServed(h, singles.at(-1)!);
    } finally {
      raw.close();
    }
  } finally {
    await h.stop();
  }
}

async function certdRun(
  defaultLeaf: Leaf,
  bulk: Leaf[],
  more: { singles: Leaf[]; reloads: Leaf[] } | undefined,
  r: SizeResult,
): Promise<void> {
  const h = await startBenchHaproxy(defaultLeaf.bundle);
  const clock = new PushClock();
  const deployer = new Deployer({
    certDir: h.certDir,
    crtList: h.crtList,
    instances: [{ runtime: h.runtime }],
    defaultEntry: h.defaultEntry,
    log: silentLogger,
    metrics: clock,
  });
  let deployerRunning = true;
  try {
    await deployer.start([]);
    // Waits for the instance's initial reconcile, out of the timing. Not `upsert([])`: on an idle
    // instance an empty sync is never settled and waits for the timeout (see the report).
    mustSucceed('warm-up', await deployer.upsert([h.defaultEntry]));
    if (more) r.rssBeforeKb = await h.workerRssKb();
    const entries = entriesFor(h.certDir, bulk);
    clock.reset();
    const t0 = performance.now();
    mustSucceed('bulk upsert', await deployer.upsert(entries, { timeoutMs: BULK_TIMEOUT_MS }));
    const totalMs = performance.now() - t0;
    if (clock.ops !== entries.length) throw new Error(`bulk upsert pushed ${clock.ops} certificates, expected ${entries.length}`);
    await expectServed(h, bulk.at(-1)!);
    const alone = await timeFilesAlone(h.defaultEntry, entries, more ? entriesFor(h.certDir, more.singles.slice(0, FILES_ALONE_SINGLES)) : []);
    r.certd.push({ totalMs, beforePushMs: clock.first - t0, pushMs: clock.last - clock.first, filesAloneMs: alone.bulkMs });
    if (!more) return;
    r.filesAloneSingleMs.push(...alone.singleMs);
    r.rssRuntimeKb = await h.workerRssKb();

    const singleEntries = entriesFor(h.certDir, more.singles);
    for (const [i, e] of singleEntries.entries()) {
      clock.reset();
      const s0 = performance.now();
      mustSucceed('single upsert', await deployer.upsert([e]));
      r.certdSingleMs.push(performance.now() - s0);
      r.certdSingleBeforePushMs.push(clock.first - s0);
      r.certdSinglePushMs.push(clock.last - clock.first);
      // Resolved means served: check it on the first and the last, with a real handshake.
      if (i === 0 || i === singleEntries.length - 1) await expectServed(h, more.singles[i]!);
    }

    // The classic path on the same files: the deployer must not notice the reload and re-push.
    await deployer.stop();
    deployerRunning = false;
    const onDisk: DeployEntry[] = [h.defaultEntry, ...entries, ...singleEntries];
    for (const leaf of more.reloads) {
      const [e] = entriesFor(h.certDir, [leaf]);
      onDisk.push(e!);
      const t0r = performance.now();
      await h.files.writeEntries([e!]);
      await h.files.writeCrtList(onDisk);
      await h.haproxy.reload();
      r.reloadWorkerMs.push(performance.now() - t0r);
      await waitServed(h, leaf);
      r.reloadMs.push(performance.now() - t0r);
      log(`  reload with ${num(onDisk.length - 1)} certs: ${ms(r.reloadMs.at(-1)!)}`);
    }
    r.rssReloadedKb = await h.workerRssKb();
  } finally {
    if (deployerRunning) await deployer.stop();
    await h.stop();
  }
}

async function measureSize(n: number, defaultLeaf: Leaf, pool: Leaf[], maxN: number): Promise<SizeResult> {
  const bulk = pool.slice(0, n);
  const singles = pool.slice(maxN, maxN + SINGLES);
  const reloads = pool.slice(maxN + SINGLES, maxN + SINGLES + RELOADS[n]!);
  const r: SizeResult = {
    n,
    floor: [],
    certd: [],
    floorSingleMs: [],
    certdSingleMs: [],
    certdSingleBeforePushMs: [],
    certdSinglePushMs: [],
    filesAloneSingleMs: [],
    reloadMs: [],
    reloadWorkerMs: [],
    rssBeforeKb: Number.NaN,
    rssRuntimeKb: Number.NaN,
    rssReloadedKb: Number.NaN,
  };
  const rounds = ROUNDS[n]!;
  for (let round = 0; round < rounds; round++) {
    const last = round === rounds - 1;
    const floor = () => floorRun(defaultLeaf, bulk, last ? singles : undefined, r);
    const certd = () => certdRun(defaultLeaf, bulk, last ? { singles, reloads } : undefined, r);
    for (const [name, run] of round % 2 === 0 ? ([['floor', floor], ['certd', certd]] as const) : ([['certd', certd], ['floor', floor]] as const)) {
      log(`N=${num(n)} round ${round + 1}/${rounds}: ${name}${last ? ' (+ per-cert' + (name === 'certd' ? ' + reload)' : ')') : ''}`);
      await run();
    }
    const c = r.certd.at(-1)!;
    log(`  floor ${ms(r.floor.at(-1)!.totalMs)}, certd ${ms(c.totalMs)} (push ${ms(c.pushMs)}; files alone ${ms(c.filesAloneMs)})`);
  }
  return r;
}

function rate(n: number, totalMs: number): string {
  return `${num((n * 1000) / totalMs)} certs/s`;
}

function table(results: SizeResult[]): { text: string; verdicts: string[] } {
  const head = ['', ...results.map((r) => `N = ${num(r.n)}`)];
  const rows: string[][] = [];
  const row = (label: string, cell: (r: SizeResult) => string) => rows.push([label, ...results.map(cell)]);
  const m = (r: SizeResult) => ({
    floor: median(r.floor.map((x) => x.totalMs)),
    certd: median(r.certd.map((x) => x.totalMs)),
    beforePush: median(r.certd.map((x) => x.beforePushMs)),
    filesAlone: median(r.certd.map((x) => x.filesAloneMs)),
    push: median(r.certd.map((x) => x.pushMs)),
    single: median(r.certdSingleMs),
    reload: median(r.reloadMs),
    // Each round's certd and floor ran back to back: their ratio is less exposed to drifting load.
    vsFloor: median(r.certd.map((c, i) => c.totalMs / r.floor[i]!.totalMs)),
    pushVsFloor: median(r.certd.map((c, i) => c.pushMs / r.floor[i]!.totalMs)),
  });
  row('bulk rounds (floor and certd alternate)', (r) => `${r.floor.length} + ${r.certd.length}`);
  row('**floor**: raw commands, 1 prompt session', (r) => `${ms(m(r).floor)} · ${rate(r.n, m(r).floor)}`);
  row('**certd**: `Deployer.upsert(all N)`', (r) => `${ms(m(r).certd)} · ${rate(r.n, m(r).certd)}`);
  row('  from the call to the first runtime command', (r) => ms(m(r).beforePush));
  row('  runtime push window (first → last command)', (r) => `${ms(m(r).push)} · ${rate(r.n, m(r).push)}`);
  row('  files alone: N PEMs + crt-list, fsynced (DeployFiles)', (r) => `${ms(m(r).filesAlone)} (${num((100 * m(r).filesAlone) / m(r).certd)} % of certd)`);
  row(`**certd / floor** (time, median of per-round ratios; goal ≤ ${GOAL_FLOOR_RATIO}×)`, (r) => `**${ratio(m(r).vsFloor)}**`);
  row('  push window / floor', (r) => ratio(m(r).pushVsFloor));
  row(`floor, one cert while N served (n=${SINGLES}) median / p95`, (r) => `${ms(median(r.floorSingleMs))} / ${ms(quantile(r.floorSingleMs, 0.95))}`);
  row(`**certd per-cert latency** (n=${SINGLES}) median / p95`, (r) => `${ms(m(r).single)} / ${ms(quantile(r.certdSingleMs, 0.95))}`);
  row('  from the call to the first runtime command, median', (r) => ms(median(r.certdSingleBeforePushMs)));
  row('  runtime push window, median', (r) => ms(median(r.certdSinglePushMs)));
  row(`  files alone: 1 PEM + crt-list of N (n=${FILES_ALONE_SINGLES}), median`, (r) => ms(median(r.filesAloneSingleMs)));
  row('**reload path**, one update, median (min–max)', (r) => `${ms(m(r).reload)} (${ms(Math.min(...r.reloadMs))}–${ms(Math.max(...r.reloadMs))}), n=${r.reloadMs.length}`);
  row('  of which until the new worker answers', (r) => ms(median(r.reloadWorkerMs)));
  row(`**reload / certd per-cert** (goal ≥ ${GOAL_RELOAD_RATIO}× at 10,000)`, (r) => `**${ratio(m(r).reload / m(r).single)}**`);
  row('HAProxy worker RSS, N pushed at runtime', (r) =>
    `${num(r.rssRuntimeKb / 1024, 1)} MiB (${num((r.rssRuntimeKb - r.rssBeforeKb) / r.n, 1)} KiB/cert)`,
  );
  row('HAProxy worker RSS after the reloads (from files)', (r) => `${num(r.rssReloadedKb / 1024, 1)} MiB`);
  const widths = head.map((_, c) => Math.max(...[head, ...rows].map((cells) => cells[c]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const text = [line(head), `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n');

  const verdicts: string[] = [];
  for (const r of results) {
    const x = m(r);
    const fr = x.vsFloor;
    verdicts.push(
      `- N = ${num(r.n)}: certd / floor = ${num(fr, 3)}× → goal ≤ ${GOAL_FLOOR_RATIO}× ${fr <= GOAL_FLOOR_RATIO ? '**met**' : `**missed** (by ${num((fr / GOAL_FLOOR_RATIO - 1) * 100, 1)} %)`}` +
        `; reload / certd per-cert = ${ratio(x.reload / x.single)}` +
        (r.n === 10_000 ? ` → goal ≥ ${GOAL_RELOAD_RATIO}× ${x.reload / x.single >= GOAL_RELOAD_RATIO ? '**met**' : '**missed**'}` : ''),
    );
  }
  return { text, verdicts };
}

/** Which code was measured: the commit, and whether src/ had uncommitted changes. */
function revision(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8', cwd: fileURLToPath(new URL('..', import.meta.url)) }).trim();
    const dirty = git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).length;
    return `${git('rev-parse', '--short', 'HEAD')}${dirty > 0 ? ` + uncommitted changes in ${dirty} src/ files` : ''}`;
  } catch {
    return 'unknown (no git)';
  }
}

function machine(code: string): string[] {
  let haproxy = 'unknown';
  try {
    haproxy = execFileSync(haproxyBinary(), ['-v'], { encoding: 'utf8' }).split('\n')[0]!;
  } catch {
    // Reported as unknown; the bench itself would have failed to start HAProxy.
  }
  return [
    `- nproc: ${availableParallelism()} (${cpus()[0]?.model ?? 'unknown CPU'})`,
    `- haproxy: ${haproxy}`,
    `- node: ${process.version}`,
    `- code: ${code}`,
  ];
}

/** The 1-minute load average: on a shared 2-core machine, the first thing to read next to the numbers. */
function load(): string {
  return num(loadavg()[0]!, 2);
}

async function main(): Promise<void> {
  const started = performance.now();
  const loadBefore = load();
  // Modules are loaded by now: this is the code measured, even if src/ changes during the run.
  const code = revision();
  const maxN = Math.max(...SIZES);
  const needed = maxN + SINGLES + Math.max(...SIZES.map((n) => RELOADS[n]!));
  log(`issuing ${num(needed)} ECDSA P-256 leaves (before any timing)`);
  const g0 = performance.now();
  const [defaultLeaf] = await makeLeaves(1, 'default');
  const pool = await makeLeaves(needed, 'c');
  log(`  ${ms(performance.now() - g0)}`);

  const results: SizeResult[] = [];
  for (const n of SIZES) results.push(await measureSize(n, defaultLeaf!, pool, maxN));

  const { text, verdicts } = table(results);
  const command = QUICK ? 'npm run bench:deploy -- --quick' : 'npm run bench:deploy';
  const header = [
    `Run ${new Date().toISOString()} · \`${command}\` · ${num((performance.now() - started) / 1000)} s in all`,
    '',
    ...machine(code),
    `- load average (1 min) at start / end: ${loadBefore} / ${load()}`,
  ];
  console.log(`\n${header.join('\n')}\n\n${text}\n\n${verdicts.join('\n')}`);
  if (QUICK) {
    log('--quick: bench/RESULTS.md left as it is');
    return;
  }
  await refreshGenerated(
    RESULTS_FILE,
    'Benchmark results',
    [
      '## Deploy: certd vs HAProxy floor vs reload (`bench/deploy.ts`)',
      '',
      ...header,
      '',
      text,
      '',
      ...verdicts,
      '',
      'Medians; certs/s = N ÷ median time. "floor" = `new/set/commit ssl cert` + `add ssl crt-list` per certificate,',
      'request/response on one prompt session. "certd" is the whole `Deployer.upsert` call: every PEM and the crt-list',
      'written atomically and fsynced, and the runtime push; its push window comes from the deployer\'s own per-operation',
      'metrics, and "files alone" times the same DeployFiles writes without HAProxy, right after. The reload path writes',
      'the same files, reloads (SIGUSR2 to the master), and polls TLS handshakes until the new worker presents the new',
      'certificate. Per-cert and reload rows come from the last round\'s instances.',
    ].join('\n'),
  );
  log(`wrote ${RESULTS_FILE}`);
}

await main();
