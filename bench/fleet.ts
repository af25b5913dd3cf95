/**
 * Fleets, side by side in one run (issue #5):
 *
 *  1. One new certificate to N = 1, 3, 5 instances (startFleet: one daemon, N real HAProxy
 *     processes sharing certDir and crt-list, each already serving BASE certificates):
 *     - certd: from `service.ensure([name])` (local CA) to the last instance presenting the new
 *       serial in a TLS handshake;
 *     - reload: the daemon stopped, the same files written the classic way (`cat` the PEM, append
 *       the crt-list line), every instance reloaded at once (SIGUSR2 to each master), until the
 *       last one presents the new serial.
 *  2. Full sync of a fresh instance while the daemon holds FULL certificates (imported from
 *     pre-made local-CA leaves): the instance is killed and started with a crt-list holding only
 *     the default line (as test/fleet.test.ts does), so everything arrives over the runtime API;
 *     timed from the start until the deployer reports nothing pending, then spot-checked with
 *     handshakes. Compared with a plain HAProxy loading the same FULL certificates from files
 *     (cold start, and reload), and shown next to the instance restarted WITH its files (shared
 *     volume), where the daemon only verifies what it serves.
 *
 * Run: npm run bench:fleet            (FULL = 10,000; ~7 minutes on 2 cores)
 *      npm run bench:fleet -- --quick (FULL = 1,000, fewer rounds; prints, leaves RESULTS.md alone)
 */
import { X509Certificate } from 'node:crypto';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManagedHaproxy } from '../src/haproxy/managed/managed-haproxy.js';
import { startFleet, type Fleet } from '../test/helpers/fleet.js';
import { pool, servedAt } from './lib/handshakes.js';
import { startPlainHaproxy } from './lib/instance.js';
import { makeLeaves, type Leaf } from './lib/leaves.js';
import { loadAverage, machineLines } from './lib/machine.js';
import { waitForQuiet } from './lib/quiet.js';
import { refreshSection } from './lib/results.js';
import { median, ms, num, ratio } from './lib/stats.js';
import { markdownTable } from './lib/table.js';

const QUICK = process.argv.includes('--quick');
const SIZES = [1, 3, 5];
/** Certificates every instance serves before the new one arrives (the reload re-reads them all). */
const BASE = QUICK ? 50 : 200;
const ROUNDS = QUICK ? 5 : 10;
const FULL = QUICK ? 1_000 : 10_000;
const FULL_ROUNDS = QUICK ? 2 : 3;
/** Handshakes after a full sync or start: names spread over the whole set. */
const SPOT_CHECKS = 25;
const IMPORT_CONCURRENCY = 32;
const SYNC_TIMEOUT_MS = 600_000;
/** Starting or reloading HAProxy with FULL PEM files takes seconds to tens of seconds. */
const START_TIMEOUT_MS = 300_000;
const RESULTS_FILE = fileURLToPath(new URL('./RESULTS.md', import.meta.url));

interface SizeResult {
  n: number;
  certdMs: number[];
  /** Of certdMs: until ensure() resolved (every instance answered). */
  certdResolvedMs: number[];
  reloadMs: number[];
  /** Of reloadMs: until every reload() resolved (every new worker answers). */
  reloadWorkersMs: number[];
}

interface FullResult {
  importMs: number;
  /** Fresh instance: start → deployer reports nothing pending (spot-checked after). */
  certdSyncMs: number[];
  /** Of certdSyncMs: until HAProxy answered (serving the default certificate). */
  certdUpMs: number[];
  /** Plain HAProxy, cold start from FULL files → serving (spot-checked). */
  plainStartMs: number[];
  /** Plain HAProxy, reload with FULL files → the new worker serving (spot-checked). */
  plainReloadMs: number[];
  /** The fleet instance restarted WITH its files → the daemon has verified all and reports nothing pending. */
  certdRestartMs: number[];
  /** Of certdRestartMs: until HAProxy answered (all loaded from files). */
  certdRestartUpMs: number[];
}

function log(line: string): void {
  process.stderr.write(`[bench:fleet] ${line}\n`);
}

function serialOf(leaf: Leaf): string {
  return new X509Certificate(leaf.bundle.certPem).serialNumber.toLowerCase();
}

/** Imports pre-made leaves through the service (store + deploy), a few at a time. */
async function importAll(fleet: Fleet, leaves: Leaf[]): Promise<void> {
  await pool(leaves, IMPORT_CONCURRENCY, async (l) => {
    const r = await fleet.daemon.service.importPem(l.bundle.certPem, l.bundle.keyPem);
    if (r.deploy?.failed.length) throw new Error(`import of ${l.name}: ${JSON.stringify(r.deploy.failed)}`);
  });
}

async function measureSize(n: number, base: Leaf[], classic: Leaf[]): Promise<SizeResult> {
  const r: SizeResult = { n, certdMs: [], certdResolvedMs: [], reloadMs: [], reloadWorkersMs: [] };
  const fleet = await startFleet({ listed: n });
  try {
    await importAll(fleet, base);
    // Untimed: the first issuance creates the embedded local CA's root.
    await fleet.daemon.service.ensure([`warmup-${n}.fleet.bench`]);
    for (let i = 0; i < ROUNDS; i++) {
      const name = `new-${n}-${i}.fleet.bench`;
      const t0 = performance.now();
      const issued = await fleet.daemon.service.ensure([name]);
      const resolved = performance.now();
      if (issued.deploy?.ok.length !== n) throw new Error(`${name}: deployed on ${JSON.stringify(issued.deploy)}`);
      const at = await Promise.all(fleet.members.map((m) => servedAt(m.tlsPort, name, issued.cert.serial, 10_000)));
      r.certdMs.push(Math.max(...at) - t0);
      r.certdResolvedMs.push(resolved - t0);
    }
    log(`N=${n}: certd ${ms(median(r.certdMs))}`);

    // The classic way, on the same instances and files: the daemon must not re-push after reloads.
    await fleet.daemon.stop();
    const certDir = fleet.config.haproxy.certDir;
    for (const leaf of classic) {
      const t0 = performance.now();
      const pem = join(certDir, `${leaf.name}.pem`);
      await writeFile(pem, `${leaf.bundle.certPem}${leaf.bundle.keyPem}`);
      await appendFile(fleet.config.haproxy.crtList, `${pem} ${leaf.name}\n`);
      await Promise.all(fleet.members.map((m) => m.haproxy.reload()));
      const reloaded = performance.now();
      const at = await Promise.all(fleet.members.map((m) => servedAt(m.tlsPort, leaf.name, serialOf(leaf))));
      r.reloadMs.push(Math.max(...at) - t0);
      r.reloadWorkersMs.push(reloaded - t0);
    }
    log(`N=${n}: reload ${ms(median(r.reloadMs))}`);
    return r;
  } finally {
    await fleet.stop();
  }
}

/** Handshakes for names spread over the set (first and last included) must present their leaf. */
async function spotCheck(port: number, leaves: Leaf[]): Promise<void> {
  const step = Math.max(1, Math.floor(leaves.length / (SPOT_CHECKS - 1)));
  const picks = [...leaves.filter((_, i) => i % step === 0).slice(0, SPOT_CHECKS - 1), leaves.at(-1)!];
  for (const leaf of picks) await servedAt(port, leaf.name, serialOf(leaf), 5_000);
}

/**
 * status() walks every desired certificate (~10 ms at 10,000 on this machine): polled every 20 ms it
 * would take a good share of the event loop the deployer itself runs on. Polled every 250 ms it
 * costs little, and adds at most 250 ms to a sync measured in seconds.
 */
const STATUS_POLL_MS = 250;

/** Waits until the deployer reports this worker fully in sync. */
async function synced(fleet: Fleet, pid: number): Promise<void> {
  const deadline = performance.now() + SYNC_TIMEOUT_MS;
  for (;;) {
    const s = fleet.daemon.deployer.status()[0]!;
    if (s.state === 'up' && s.pid === pid && s.pending === 0) return;
    if (performance.now() > deadline) throw new Error(`instance not in sync within ${SYNC_TIMEOUT_MS} ms: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, STATUS_POLL_MS));
  }
}

async function measureFull(leaves: Leaf[]): Promise<FullResult> {
  const r: FullResult = { importMs: 0, certdSyncMs: [], certdUpMs: [], plainStartMs: [], plainReloadMs: [], certdRestartMs: [], certdRestartUpMs: [] };
  const fleet = await startFleet({ listed: 1 });
  try {
    const h1 = fleet.members[0]!;
    log(`full sync: importing ${num(FULL)} certificates into the daemon (store + deploy, not timed as a result)`);
    const t0 = performance.now();
    await importAll(fleet, leaves);
    r.importMs = performance.now() - t0;
    log(`  ${ms(r.importMs)}`);
    const list = fleet.config.haproxy.crtList;
    const full = await readFile(list, 'utf8');
    if (full.split('\n').filter((l) => l.includes('.pem')).length !== FULL + 1) throw new Error('the crt-list does not hold every certificate');
    // From here on h1 runs under a handle of our own on the same config and sockets (startFleet's
    // names): its start bound must cover loading FULL PEM files, far past the default 15 s.
    await h1.haproxy.kill();
    const inst = new ManagedHaproxy({
      configFile: join(fleet.dir, `${h1.name}.cfg`),
      masterSocket: join(fleet.dir, `${h1.name}.master`),
      runtimeSocket: h1.adminSocket,
      startTimeoutMs: START_TIMEOUT_MS,
    });
    try {
      for (let round = 0; round < FULL_ROUNDS; round++) {
        await waitForQuiet(log);
        await fullRound(fleet, inst, h1.tlsPort, full, leaves, r);
        log(
          `  round ${round + 1}/${FULL_ROUNDS}: certd fresh sync ${ms(r.certdSyncMs.at(-1)!)} (up ${ms(r.certdUpMs.at(-1)!)}),` +
            ` restart from files → verified ${ms(r.certdRestartMs.at(-1)!)} (up ${ms(r.certdRestartUpMs.at(-1)!)}),` +
            ` plain start ${ms(r.plainStartMs.at(-1)!)}, reload ${ms(r.plainReloadMs.at(-1)!)}`,
        );
      }
    } finally {
      await inst.stop().catch(() => inst.kill());
    }
    return r;
  } finally {
    await fleet.stop();
  }
}

/** One round of the full-sync comparison; `inst` is the fleet's instance, stopped, and left stopped. */
async function fullRound(fleet: Fleet, inst: ManagedHaproxy, tlsPort: number, full: string, leaves: Leaf[], r: FullResult): Promise<void> {
  const list = fleet.config.haproxy.crtList;
  // Fresh instance: empty runtime state, a crt-list with only the default line.
  await writeFile(list, full.split('\n').slice(0, 2).join('\n') + '\n');
  const s0 = performance.now();
  await inst.start();
  r.certdUpMs.push(performance.now() - s0);
  // The daemon's files are whole again at once (only the instance started without them).
  await writeFile(list, full);
  await synced(fleet, await inst.workerPid());
  r.certdSyncMs.push(performance.now() - s0);
  await spotCheck(tlsPort, leaves);

  // The same instance restarted with its files: it loads everything itself, the daemon verifies.
  await inst.kill();
  const f0 = performance.now();
  await inst.start();
  r.certdRestartUpMs.push(performance.now() - f0);
  await synced(fleet, await inst.workerPid());
  r.certdRestartMs.push(performance.now() - f0);
  await spotCheck(tlsPort, leaves);

  // A plain HAProxy on the same files, cold start then a reload, while the instance idles.
  const p0 = performance.now();
  const plain = await startPlainHaproxy(list, { startTimeoutMs: START_TIMEOUT_MS });
  try {
    await spotCheck(plain.tlsPort, leaves);
    r.plainStartMs.push(performance.now() - p0);
    const q0 = performance.now();
    await plain.haproxy.reload();
    await spotCheck(plain.tlsPort, leaves);
    r.plainReloadMs.push(performance.now() - q0);
  } finally {
    await plain.stop();
  }
  // Down only for an instant before the next round's start: the daemon's retry backoff stays short.
  await inst.kill();
}

function minMax(xs: number[]): string {
  return xs.length === 0 ? 'n/a' : `${ms(median(xs))} (${ms(Math.min(...xs))}–${ms(Math.max(...xs))})`;
}

function report(sizes: SizeResult[], full: FullResult): { sizeTable: string; fullTable: string; notes: string[] } {
  const col = (f: (r: SizeResult) => string) => sizes.map(f);
  const sizeTable = markdownTable(
    ['', ...sizes.map((r) => `N = ${r.n}`)],
    [
      [`**certd**: \`ensure([new])\` → served by all N, median (min–max), n=${ROUNDS}`, ...col((r) => `**${minMax(r.certdMs)}**`)],
      ['  of which until ensure() resolved (every instance answered)', ...col((r) => ms(median(r.certdResolvedMs)))],
      [`**reload**: files + reload all N → served by all N, median (min–max), n=${ROUNDS}`, ...col((r) => `**${minMax(r.reloadMs)}**`)],
      ['  of which until every reload() resolved', ...col((r) => ms(median(r.reloadWorkersMs)))],
      ['**reload ÷ certd**', ...col((r) => `**${ratio(median(r.reloadMs) / median(r.certdMs))}**`)],
    ],
  );
  const sync = median(full.certdSyncMs);
  const fullTable = markdownTable(
    ['', `${num(FULL)} certificates, median (min–max), n=${FULL_ROUNDS}`],
    [
      ['**certd, fresh instance** (default-only crt-list): start → all served over the runtime API', `**${minMax(full.certdSyncMs)}**`],
      ['  of which HAProxy up (serving the default certificate)', ms(median(full.certdUpMs))],
      ['  push rate', `${num((FULL * 1000) / (sync - median(full.certdUpMs)))} certs/s`],
      ['**plain HAProxy, cold start** from files → serving all', `**${minMax(full.plainStartMs)}**`],
      ['**plain HAProxy, reload** from files → new worker serving all', `**${minMax(full.plainReloadMs)}**`],
      ['**certd fresh sync ÷ plain start** / **÷ plain reload**', `**${ratio(sync / median(full.plainStartMs))}** / **${ratio(sync / median(full.plainReloadMs))}**`],
      ['certd, instance restarted WITH its files: start → daemon verified all', minMax(full.certdRestartMs)],
      ['  of which HAProxy up (loaded from files)', ms(median(full.certdRestartUpMs))],
      [`(setup: ${num(FULL)} imports through CertService, ${IMPORT_CONCURRENCY} at a time, to one instance)`, ms(full.importMs)],
    ],
  );
  const notes = sizes.map(
    (r) => `- N = ${r.n}: a new certificate reaches every instance in ${ms(median(r.certdMs))} with certd vs ${ms(median(r.reloadMs))} by reloading (${ratio(median(r.reloadMs) / median(r.certdMs))})`,
  );
  notes.push(
    `- full sync of ${num(FULL)}: certd ${ms(sync)} vs plain start ${ms(median(full.plainStartMs))} (${ratio(sync / median(full.plainStartMs))}) and reload ${ms(median(full.plainReloadMs))} (${ratio(sync / median(full.plainReloadMs))})`,
  );
  return { sizeTable, fullTable, notes };
}

async function main(): Promise<void> {
  await waitForQuiet(log);
  const started = performance.now();
  const loadBefore = loadAverage();
  log(`making ${num(SIZES.length * (BASE + ROUNDS) + FULL)} ECDSA P-256 leaves (before any timing)`);
  const base = await makeLeaves(BASE, 'base');
  const classic = await makeLeaves(SIZES.length * ROUNDS, 'reload');
  const fullLeaves = await makeLeaves(FULL, 'full');
  const sizes: SizeResult[] = [];
  for (const [i, n] of SIZES.entries()) {
    await waitForQuiet(log);
    sizes.push(await measureSize(n, base, classic.slice(i * ROUNDS, (i + 1) * ROUNDS)));
  }
  const full = await measureFull(fullLeaves);

  const { sizeTable, fullTable, notes } = report(sizes, full);
  const command = QUICK ? 'npm run bench:fleet -- --quick' : 'npm run bench:fleet';
  const header = [
    `Run ${new Date().toISOString()} · \`${command}\` · ${num((performance.now() - started) / 1000)} s in all`,
    '',
    ...machineLines(),
    `- load average (1 min) at start / end: ${loadBefore} / ${loadAverage()}`,
  ];
  console.log(`\n${header.join('\n')}\n\n${sizeTable}\n\n${fullTable}\n\n${notes.join('\n')}`);
  if (QUICK) {
    log('--quick: bench/RESULTS.md left as it is');
    return;
  }
  await refreshSection(
    RESULTS_FILE,
    'fleet',
    'Benchmark results',
    [
      '## Fleet: certd vs reloads, N instances and full sync (`bench/fleet.ts`)',
      '',
      ...header,
      '',
      `One new certificate to N instances, each already serving ${BASE} (one daemon, N \`haproxy -W\` sharing certDir and crt-list):`,
      '',
      sizeTable,
      '',
      `Full sync while the daemon holds ${num(FULL)} certificates (one instance):`,
      '',
      fullTable,
      '',
      ...notes,
      '',
      '"Served" = the first TLS handshake presenting the new serial (every instance; all in one Node process, polled back to back).',
      "certd's time includes issuing from the local CA (~1–2 ms), the store and the deploy files (fsynced). The reload path writes",
      'the PEM and appends the crt-list line (no fsync), then reloads every master at once (SIGUSR2). The fresh instance starts with',
      'a default-only crt-list and gets everything over the runtime API (restart detected by `show info` polling, 200 ms here);',
      'the plain HAProxy reads the same crt-list and PEM files the daemon wrote.',
    ].join('\n'),
  );
  log(`wrote ${RESULTS_FILE}`);
}

await main();
