/**
 * On-demand TLS, side by side in one run (issue #3):
 *
 *  - certd: the daemon + one managed HAProxy (startStack with onDemand, in a process of its own
 *    as in production, see StackProcess): an unknown SNI goes
 *    through the `mode tcp` SNI hop, Lua asks the daemon, which asks the `ask` endpoint, issues
 *    from its local CA (ECDSA P-256), stores, deploys over the runtime API, then the handshake
 *    goes on with the new certificate;
 *  - Caddy 2.6 (Debian `caddy`): `tls internal { on_demand }` with the same `ask` endpoint
 *    (ECDSA P-256 leaves from its internal CA);
 *  - HAProxy direct: a second HAProxy binding the crt-list the daemon wrote, with no SNI hop and
 *    no Lua — the floor for the steady state;
 *  - certd forge (onDemand.forge, issue #17): a second certd stack whose Lua asks the daemon for a
 *    decision only and sends approved names to a `generate-certificates` bind, where HAProxy signs
 *    the first certificate from the daemon's name-constrained intermediate; the real certificate
 *    follows behind;
 *  - certd forge, local decision: a third certd stack, forge with no `ask` (and no per-client
 *    limit), so its Lua decides from the patterns and a daemon grant with no call in the handshake;
 *  - bare forge: one HAProxy bind with `generate-certificates` on the forge stack's own files, no
 *    hop, no Lua, no daemon — HAProxy's own speed, the floor of the forge path.
 *
 * Measured with node:tls on new TCP connections (full handshakes, no session reuse): the FIRST
 * handshake of never-seen names, sequential (certd and Caddy alternating name by name) and 10 at
 * once; then steady-state handshakes on known names, the three servers in rotating blocks. Every
 * first handshake must verify against the server's own root with the right SAN.
 *
 * Run: npm run bench:ondemand            (100 names + 100 concurrent + 1,000 steady each; ~30 s)
 *      npm run bench:ondemand -- --quick (20 names, 100 steady; prints, leaves RESULTS.md alone)
 */
import { fileURLToPath } from 'node:url';
import { eventually } from '../test/helpers/stack.js';
import { certDirLayout } from '../src/haproxy/cert-dir.js';
import { startBareForge } from './lib/bare-forge.js';
import { startCaddy, type BenchCaddy } from './lib/caddy.js';
import { startOnDemandFloor, type OnDemandFloor } from './lib/ondemand-floor.js';
import { HandshakeClient } from './lib/handshake-client.js';
import type { Served } from './lib/handshakes.js';
import { startPlainHaproxy, type PlainHaproxy } from './lib/instance.js';
import { meanMsBetween } from './lib/metrics.js';
import { debianVersion, loadAverage, machineLines, versionOf } from './lib/machine.js';
import { requirePeers } from './lib/peers.js';
import { waitForQuiet } from './lib/quiet.js';
import { refreshSection } from './lib/results.js';
import { StackProcess } from './lib/stack-process.js';
import { median, ms, num, quantile, ratio } from './lib/stats.js';
import { markdownTable, verdict } from './lib/table.js';

const QUICK = process.argv.includes('--quick');
const NEW_NAMES = QUICK ? 20 : 100;
const CONCURRENCY = 10;
const STEADY = QUICK ? 100 : 1_000;
/** Steady-state handshakes per server per block; the servers' order rotates every block. */
const STEADY_BLOCK = 25;
/** Every this many steady handshakes, one more is made with chain verification (not timed). */
const VERIFY_EVERY = 50;
const GOAL_FIRST_VS_CADDY = 0.8;
const GOAL_STEADY_VS_DIRECT = 1.1;
const ONDEMAND_HISTOGRAM = 'certd_ondemand_issue_duration_seconds';
const RESULTS_FILE = fileURLToPath(new URL('./RESULTS.md', import.meta.url));

/** Every handshake is made (and timed), and every ask answered, on the client's own thread. */
const client = await HandshakeClient.start();
const timed = (port: number, name: string, opts?: { ca?: string; timeoutMs?: number }) => client.timed(port, name, opts);

type Target = 'certd' | 'forge' | 'local' | 'caddy' | 'direct' | 'floor' | 'bare';

/** Servers timed on sequential first handshakes. */
type FirstTarget = Exclude<Target, 'direct'>;
/** Servers timed on 10 first handshakes at once. */
type ConcTarget = Exclude<FirstTarget, 'floor'>;
/** The floors serve first handshakes only (they never write known.map). */
type SteadyTarget = Exclude<Target, 'floor' | 'bare' | 'local'>;
const FIRST_TARGETS: FirstTarget[] = ['certd', 'forge', 'local', 'caddy', 'floor', 'bare'];
const CONC_TARGETS: ConcTarget[] = ['certd', 'forge', 'local', 'caddy', 'bare'];
const GOAL_FORGE_VS_BARE = 1.3;

interface Server {
  target: Target;
  port: number;
  ca: string;
}

interface Samples {
  /** Index i of each is the same name (every first-handshake server back to back, order rotating). */
  firstSeq: Record<FirstTarget, number[]>;
  firstConc: Record<ConcTarget, number[]>;
  concWall: Record<ConcTarget, number[]>;
  /** Each sequential name's successful first-handshake times, by server (for per-name ratios). */
  seqByName: Partial<Record<FirstTarget, number>>[];
  /** Failures per server, counted and reported, never fatal: the bench always finishes. */
  seqFailed: Record<FirstTarget, string[]>;
  /** Concurrent first handshakes that failed (the name then retried until served). */
  concFailed: Record<ConcTarget, string[]>;
  /** Names still not served after a failed first handshake and 15 s of retries. */
  neverServed: Record<FirstTarget, string[]>;
  steadyFailed: Record<SteadyTarget, string[]>;
  steady: Record<SteadyTarget, number[]>;
  /** Median of each steady block, per server: blocks ran back to back, so their ratios pair up. */
  steadyBlocks: Record<SteadyTarget, number[]>;
  verified: Record<SteadyTarget, number>;
  /** certd_ondemand_issue_duration_seconds over the sequential names: daemon side, SNI → deployed. */
  daemonSeqMeanMs: number;
}

function log(line: string): void {
  process.stderr.write(`[bench:ondemand] ${line}\n`);
}

/** Throws unless the handshake presented a certificate for exactly `name` that verified. */
function checkFirst(target: Target, name: string, served: Served): void {
  if (!served.authorized || served.san.length !== 1 || served.san[0] !== name) {
    throw new Error(`${target}: first handshake for ${name} got SAN ${JSON.stringify(served.san)} (${served.authorizationError ?? 'verified'})`);
  }
}

async function first(s: Server, name: string): Promise<number> {
  const { ms: t, served } = await timed(s.port, name, { ca: s.ca, timeoutMs: 15_000 }).catch((err: Error) => {
    throw new Error(`${s.target}: first handshake for ${name}: ${err.message}`, { cause: err });
  });
  checkFirst(s.target, name, served);
  return t;
}

/** The TLS alert's code says it all (OpenSSL's message adds a source file and line). */
function failure(name: string, err: Error): string {
  return `${name}: ${(err.cause as { code?: string } | undefined)?.code ?? err.message}`;
}

/** After a failed first handshake the name must still get served; one that is not is counted. */
async function servedAfterFailure(s: Server, name: string, r: Samples): Promise<void> {
  try {
    await eventually(async () => (await timed(s.port, name, { ca: s.ca })).served.authorized, 15_000, `${s.target}: ${name} after a failed first handshake`);
  } catch {
    r.neverServed[s.target as FirstTarget].push(name);
  }
}

async function firstSequential(servers: Server[], r: Samples): Promise<void> {
  for (let i = 0; i < NEW_NAMES; i++) {
    const name = `seq${i}.od.bench`;
    const byServer: Samples['seqByName'][number] = {};
    for (const [j] of servers.entries()) {
      const s = servers[(i + j) % servers.length]!;
      const key = s.target as keyof Samples['firstSeq'];
      try {
        const t = await first(s, name);
        r.firstSeq[key].push(t);
        byServer[key] = t;
      } catch (err) {
        r.seqFailed[key].push(failure(name, err as Error));
        await servedAfterFailure(s, name, r);
      }
    }
    r.seqByName.push(byServer);
  }
}

async function firstConcurrent(servers: Server[], r: Samples): Promise<void> {
  for (let b = 0; b < NEW_NAMES / CONCURRENCY; b++) {
    const names = Array.from({ length: CONCURRENCY }, (_, j) => `con${b * CONCURRENCY + j}.od.bench`);
    for (const s of servers.map((_, i) => servers[(i + b) % servers.length]!)) {
      const key = s.target as ConcTarget;
      const t0 = performance.now();
      const failed: string[] = [];
      const refused = (n: string, err: Error) => {
        failed.push(failure(n, err));
        return Number.NaN;
      };
      const times = await Promise.all(names.map((n) => first(s, n).catch((err: Error) => refused(n, err))));
      r.concWall[key].push(performance.now() - t0);
      r.firstConc[key].push(...times.filter((t) => !Number.isNaN(t)));
      r.concFailed[key].push(...failed);
      // A refused first handshake must not leave the name unserved: the next one has to work.
      for (const f of failed) await servedAfterFailure(s, f.slice(0, f.indexOf(':')), r);
    }
  }
}

async function steadyState(servers: Server[], known: string[], r: Samples): Promise<void> {
  let k = 0;
  for (let b = 0; b < STEADY / STEADY_BLOCK; b++) {
    const order = servers.map((_, i) => servers[(i + b) % servers.length]!);
    const names = Array.from({ length: STEADY_BLOCK }, () => known[k++ % known.length]!);
    for (const s of order) {
      const target = s.target as SteadyTarget;
      const block: number[] = [];
      for (const [j, name] of names.entries()) {
        try {
          const { ms: t, served } = await timed(s.port, name);
          if (!served.san.includes(name)) throw new Error(`served SAN ${JSON.stringify(served.san)}`);
          r.steady[target].push(t);
          block.push(t);
          if ((b * STEADY_BLOCK + j) % VERIFY_EVERY === 0) {
            checkFirst(s.target, name, (await timed(s.port, name, { ca: s.ca })).served);
            r.verified[target]++;
          }
        } catch (err) {
          r.steadyFailed[target].push(failure(name, err as Error));
        }
      }
      r.steadyBlocks[target].push(median(block));
    }
  }
}

interface Procs {
  stack: StackProcess;
  forge: StackProcess;
  local: StackProcess;
  caddy: BenchCaddy;
  floor: OnDemandFloor;
  bare: PlainHaproxy;
}

async function measure(p: Procs, r: Samples): Promise<{ direct: PlainHaproxy; pidSame: boolean }> {
  const { stack } = p;
  const certd: Server = { target: 'certd', port: stack.tlsPort, ca: await stack.rootPem() };
  const forgeRoot = await p.forge.rootPem();
  const forge: Server = { target: 'forge', port: p.forge.tlsPort, ca: forgeRoot };
  const local: Server = { target: 'local', port: p.local.tlsPort, ca: await p.local.rootPem() };
  const caddy: Server = { target: 'caddy', port: p.caddy.port, ca: await p.caddy.rootPem() };
  const floor: Server = { target: 'floor', port: p.floor.port, ca: p.floor.rootPem };
  const bare: Server = { target: 'bare', port: p.bare.tlsPort, ca: forgeRoot };
  const pid = await stack.workerPid();
  const pidForge = await p.forge.workerPid();
  // Warm-up, not timed: certd's first issuance creates its local CA root; Caddy loads its CA lazily.
  for (const s of [certd, forge, local, caddy, floor, bare]) await eventually(async () => (await timed(s.port, 'warmup.od.bench', { ca: s.ca })).served.authorized, 15_000, `${s.target} warm-up`);

  log(`first handshake, sequential: ${NEW_NAMES} new names each (${FIRST_TARGETS.join(', ')} back to back, order rotating)`);
  const daemonBefore = await stack.histogram(ONDEMAND_HISTOGRAM);
  await firstSequential([certd, forge, local, caddy, floor, bare], r);
  r.daemonSeqMeanMs = meanMsBetween(daemonBefore, await stack.histogram(ONDEMAND_HISTOGRAM));
  log(`  p50: ${FIRST_TARGETS.map((t) => `${t} ${ms(median(r.firstSeq[t]))}`).join(', ')}`);
  log(`first handshake, ${CONCURRENCY} at once: ${NEW_NAMES} more new names each`);
  await firstConcurrent([certd, forge, local, caddy, bare], r);
  log(`  p50: ${CONC_TARGETS.map((t) => `${t} ${ms(median(r.firstConc[t]))}`).join(', ')}`);
  // The forge stack's real certificates are issued behind its answers: steady state waits for all of them.
  const forgeIssued = async () => (await p.forge.histogram(ONDEMAND_HISTOGRAM)).count;
  await eventually(async () => (await forgeIssued()) >= 2 * NEW_NAMES + 1, 60_000, 'the forge stack: a real certificate for every name it forged');
  const localIssued = async () => (await p.local.histogram(ONDEMAND_HISTOGRAM)).count;
  await eventually(async () => (await localIssued()) >= 2 * NEW_NAMES + 1, 60_000, 'the local-decision forge stack: a real certificate for every name it forged');
  const asked = await client.asked();
  const askedPerServer = (n: string) => asked.filter((a) => a === n).length;
  if (askedPerServer('seq0.od.bench') < 2) throw new Error(`the ask endpoint saw seq0.od.bench ${askedPerServer('seq0.od.bench')} times: each server should have asked`);

  // Started now, so it reads the crt-list with every certificate the daemon wrote.
  const direct = await startPlainHaproxy(stack.crtList);
  const known = Array.from({ length: NEW_NAMES }, (_, i) => `seq${i}.od.bench`);
  const sameCert = await timed(direct.tlsPort, known[0]!);
  const viaHop = await timed(certd.port, known[0]!);
  if (sameCert.served.serial !== viaHop.served.serial) throw new Error('HAProxy direct does not serve the certificate certd deployed');
  log(`steady state: ${STEADY} handshakes each on known names (certd, certd forge, HAProxy direct, Caddy in rotating blocks of ${STEADY_BLOCK})`);
  await steadyState([certd, forge, { target: 'direct', port: direct.tlsPort, ca: certd.ca }, caddy], known, r);
  return { direct, pidSame: (await stack.workerPid()) === pid && (await p.forge.workerPid()) === pidForge };
}

function report(r: Samples, pidSame: boolean): { table: string; verdicts: string[] } {
  const p50 = (xs: number[]) => median(xs);
  const p95 = (xs: number[]) => quantile(xs, 0.95);
  const both = (xs: number[]) => `${ms(p50(xs))} / ${ms(p95(xs))}`;
  const pair = (a: number[], b: number[]) => `${ratio(p50(a) / p50(b))} / ${ratio(p95(a) / p95(b))}`;
  const bold = (a: number[], b: number[]) => `**${ratio(p50(a) / p50(b))}** / ${ratio(p95(a) / p95(b))}`;
  const failedOf = (failed: string[], ok: number[]) => `${failed.length} of ${ok.length + failed.length}`;
  const dash = '—';
  // Columns: certd, certd forge, forge local, Caddy, floor, bare forge, HAProxy direct, certd ÷ Caddy, forge ÷ Caddy, forge ÷ bare, local ÷ Caddy, local ÷ bare, ÷ direct.
  const rows: string[][] = [
    [
      `**first handshake**, sequential, n=${num(r.firstSeq.forge.length)}: p50 / p95`,
      both(r.firstSeq.certd), both(r.firstSeq.forge), both(r.firstSeq.local), both(r.firstSeq.caddy), both(r.firstSeq.floor), both(r.firstSeq.bare), dash,
      pair(r.firstSeq.certd, r.firstSeq.caddy), bold(r.firstSeq.forge, r.firstSeq.caddy), bold(r.firstSeq.forge, r.firstSeq.bare),
      bold(r.firstSeq.local, r.firstSeq.caddy), bold(r.firstSeq.local, r.firstSeq.bare), dash,
    ],
    [
      '  of which failed',
      ...(['certd', 'forge', 'local', 'caddy', 'floor', 'bare'] as const).map((t) => failedOf(r.seqFailed[t], r.firstSeq[t])),
      dash, dash, dash, dash, dash, dash, dash,
    ],
    ['  certd: in the daemon (policy → issue → served; store and files follow), mean', ms(r.daemonSeqMeanMs), dash, dash, dash, dash, dash, dash, dash, dash, dash, dash, dash, dash],
    [
      `first handshake, ${CONCURRENCY} at once (successful ones): p50 / p95`,
      both(r.firstConc.certd), both(r.firstConc.forge), both(r.firstConc.local), both(r.firstConc.caddy), dash, both(r.firstConc.bare), dash,
      pair(r.firstConc.certd, r.firstConc.caddy), bold(r.firstConc.forge, r.firstConc.caddy), bold(r.firstConc.forge, r.firstConc.bare),
      bold(r.firstConc.local, r.firstConc.caddy), bold(r.firstConc.local, r.firstConc.bare), dash,
    ],
    [
      '  of which failed (TLS alert; retried until served)',
      failedOf(r.concFailed.certd, r.firstConc.certd), failedOf(r.concFailed.forge, r.firstConc.forge), failedOf(r.concFailed.local, r.firstConc.local),
      failedOf(r.concFailed.caddy, r.firstConc.caddy), dash, failedOf(r.concFailed.bare, r.firstConc.bare), dash, dash, dash, dash, dash, dash, dash,
    ],
    [
      `  wall time per batch of ${CONCURRENCY} new names, median`,
      ms(p50(r.concWall.certd)), ms(p50(r.concWall.forge)), ms(p50(r.concWall.local)), ms(p50(r.concWall.caddy)), dash, ms(p50(r.concWall.bare)), dash,
      ratio(p50(r.concWall.certd) / p50(r.concWall.caddy)), ratio(p50(r.concWall.forge) / p50(r.concWall.caddy)), ratio(p50(r.concWall.forge) / p50(r.concWall.bare)),
      ratio(p50(r.concWall.local) / p50(r.concWall.caddy)), ratio(p50(r.concWall.local) / p50(r.concWall.bare)), dash,
    ],
    [
      `**steady state**, known names, n=${num(r.steady.certd.length)}: p50 / p95`,
      both(r.steady.certd), both(r.steady.forge), dash, both(r.steady.caddy), dash, dash, both(r.steady.direct),
      pair(r.steady.certd, r.steady.caddy), pair(r.steady.forge, r.steady.caddy), dash, dash, dash,
      `certd ${bold(r.steady.certd, r.steady.direct)}; forge ${bold(r.steady.forge, r.steady.direct)}`,
    ],
  ];
  const table = markdownTable(
    ['', 'certd (HAProxy + SNI hop)', 'certd forge', 'forge, local decision', 'Caddy 2.6', 'floor (same hop, bare endpoint)', 'bare generate-certificates', 'HAProxy direct', 'certd ÷ Caddy', 'forge ÷ Caddy', 'forge ÷ bare', 'local ÷ Caddy', 'local ÷ bare', '÷ HAProxy direct'],
    rows,
  );
  const firstRatio = p50(r.firstSeq.certd) / p50(r.firstSeq.caddy);
  const forgeRatio = p50(r.firstSeq.forge) / p50(r.firstSeq.caddy);
  const forgeBare = p50(r.firstSeq.forge) / p50(r.firstSeq.bare);
  const forgeConcRatio = p50(r.firstConc.forge) / p50(r.firstConc.caddy);
  const forgeConcBare = p50(r.firstConc.forge) / p50(r.firstConc.bare);
  const steadyRatio = p50(r.steady.certd) / p50(r.steady.direct);
  const forgeSteady = p50(r.steady.forge) / p50(r.steady.direct);
  const localRatio = p50(r.firstSeq.local) / p50(r.firstSeq.caddy);
  const localBare = p50(r.firstSeq.local) / p50(r.firstSeq.bare);
  const localConcRatio = p50(r.firstConc.local) / p50(r.firstConc.caddy);
  const localConcBare = p50(r.firstConc.local) / p50(r.firstConc.bare);
  // The hop, from the steady blocks run back to back (forge − direct, block by block): less noisy than two p50s apart.
  const hopMs = median(r.steadyBlocks.forge.map((f, i) => f - r.steadyBlocks.direct[i]!));
  const paired = (a: SteadyTarget, other: SteadyTarget) => median(r.steadyBlocks[a].map((c, i) => c / r.steadyBlocks[other][i]!));
  const perName = (a: FirstTarget, other: FirstTarget) =>
    median(r.seqByName.filter((n) => n[a] !== undefined && n[other] !== undefined).map((n) => n[a]! / n[other]!));
  const verdicts = [
    `- forge, first-handshake p50 ÷ Caddy = ${ratio(forgeRatio)} sequential, ${ratio(forgeConcRatio)} 10 at once → goal ≤ ${GOAL_FIRST_VS_CADDY}× ${verdict(forgeRatio, GOAL_FIRST_VS_CADDY)} / ${verdict(forgeConcRatio, GOAL_FIRST_VS_CADDY)}` +
      ` (median of the per-name ratios, the servers back to back on each name: ${ratio(perName('forge', 'caddy'))})`,
    `- forge ÷ bare generate-certificates HAProxy p50 = ${ratio(forgeBare)} sequential, ${ratio(forgeConcBare)} 10 at once → goal ≤ ${GOAL_FORGE_VS_BARE}× ${verdict(forgeBare, GOAL_FORGE_VS_BARE)} / ${verdict(forgeConcBare, GOAL_FORGE_VS_BARE)}` +
      ` (per name: ${ratio(perName('forge', 'bare'))}; the difference is the SNI hop and the daemon's decision)`,
    `- forge, local decision (no ask: Lua decides on a daemon grant), first-handshake p50 ÷ Caddy = ${ratio(localRatio)} sequential, ${ratio(localConcRatio)} 10 at once → goal ≤ ${GOAL_FIRST_VS_CADDY}× ${verdict(localRatio, GOAL_FIRST_VS_CADDY)} / ${verdict(localConcRatio, GOAL_FIRST_VS_CADDY)}; ÷ bare = ${ratio(localBare)} / ${ratio(localConcBare)} → goal ≤ ${GOAL_FORGE_VS_BARE}× ${verdict(localBare, GOAL_FORGE_VS_BARE)} / ${verdict(localConcBare, GOAL_FORGE_VS_BARE)} (per name: ${ratio(perName('local', 'bare'))})`,
    `- where the forge's time goes, at the p50 (sequential): bare generate-certificates ${ms(p50(r.firstSeq.bare))}; + SNI hop (steady forge − direct, per block) ${ms(hopMs)};` +
      ` + Lua local decision ≈ ${ms(p50(r.firstSeq.local) - p50(r.firstSeq.bare) - hopMs)} (local − bare − hop); + Lua → daemon call, decision and \`ask\` ${ms(p50(r.firstSeq.forge) - p50(r.firstSeq.local))} (forge − local)`,
    `- certd (push path), first-handshake p50 ÷ Caddy = ${ratio(firstRatio)} → goal ≤ ${GOAL_FIRST_VS_CADDY}× ${verdict(firstRatio, GOAL_FIRST_VS_CADDY)}` +
      ` (per name: ${ratio(perName('certd', 'caddy'))} vs Caddy, ${ratio(perName('certd', 'floor'))} vs the floor)`,
    `- floor: the same HAProxy, SNI hop and Lua action in front of a bare endpoint (ask, sign with certd's local CA code, new + set + commit + add crt-list in one write;` +
      ` no name checks, policy, lock, store, files or known.map): ${ms(p50(r.firstSeq.floor))} at the p50, ${ratio(p50(r.firstSeq.floor) / p50(r.firstSeq.caddy))} of Caddy's`,
    `- steady-state p50 ÷ HAProxy direct = ${ratio(steadyRatio)} certd, ${ratio(forgeSteady)} forge → goal ≤ ${GOAL_STEADY_VS_DIRECT}× ${verdict(steadyRatio, GOAL_STEADY_VS_DIRECT)} / ${verdict(forgeSteady, GOAL_STEADY_VS_DIRECT)}` +
      ` (median of the ${r.steadyBlocks.certd.length} per-block ratios: ${ratio(paired('certd', 'direct'))} / ${ratio(paired('forge', 'direct'))};` +
      ` the SNI hop costs ${ms(p50(r.steady.certd) - p50(r.steady.direct))} per handshake at the median)`,
    ...CONC_TARGETS.filter((t) => r.concFailed[t].length > 0).map((t) => `- ${t}: ${r.concFailed[t].length} concurrent first handshakes failed, e.g. ${r.concFailed[t][0]}`),
    ...FIRST_TARGETS.flatMap((t) => [
      ...(r.seqFailed[t].length > 0 ? [`- ${t}: ${r.seqFailed[t].length} sequential first handshakes failed, e.g. ${r.seqFailed[t][0]}`] : []),
      ...(r.neverServed[t].length > 0 ? [`- ${t}: ${r.neverServed[t].length} names never served after a failed first handshake: ${r.neverServed[t].slice(0, 3).join(', ')}`] : []),
    ]),
    ...(['certd', 'forge', 'caddy', 'direct'] as const)
      .filter((t) => r.steadyFailed[t].length > 0)
      .map((t) => `- ${t}: ${r.steadyFailed[t].length} steady-state handshakes failed, e.g. ${r.steadyFailed[t][0]}`),
    `- checks: every successful first handshake (${FIRST_TARGETS.map((t) => `${r.firstSeq[t].length + (t === 'floor' ? 0 : r.firstConc[t as ConcTarget].length)} ${t}`).join(', ')}) verified against that server's root with SAN = the name` +
      ' (forge and bare: the forge stack\'s root, through the intermediate HAProxy sends);' +
      ` steady handshakes presented the name's SAN, ${r.verified.certd} / ${r.verified.forge} / ${r.verified.direct} / ${r.verified.caddy} of them (certd / forge / direct / Caddy) chain-verified;` +
      ` HAProxy worker pids ${pidSame ? 'unchanged (no reload)' : 'CHANGED'}`,
  ];
  return { table, verdicts };
}

async function main(): Promise<void> {
  const peers = requirePeers('bench:ondemand', { caddy: 'caddy' });
  await waitForQuiet(log);
  const started = performance.now();
  const loadBefore = loadAverage();
  const r: Samples = {
    firstSeq: { certd: [], forge: [], local: [], caddy: [], floor: [], bare: [] },
    firstConc: { certd: [], forge: [], local: [], caddy: [], bare: [] },
    concWall: { certd: [], forge: [], local: [], caddy: [], bare: [] },
    seqByName: [],
    seqFailed: { certd: [], forge: [], local: [], caddy: [], floor: [], bare: [] },
    concFailed: { certd: [], forge: [], local: [], caddy: [], bare: [] },
    neverServed: { certd: [], forge: [], local: [], caddy: [], floor: [], bare: [] },
    steadyFailed: { certd: [], forge: [], caddy: [], direct: [] },
    steady: { certd: [], forge: [], caddy: [], direct: [] },
    steadyBlocks: { certd: [], forge: [], caddy: [], direct: [] },
    verified: { certd: 0, forge: 0, caddy: 0, direct: 0 },
    daemonSeqMeanMs: Number.NaN,
  };
  const stopping: (() => Promise<unknown>)[] = [() => client.close()];
  let pidSame = false;
  try {
    const onDemand = {
      issuer: 'internal',
      allow: ['*.od.bench'],
      ask: client.askUrl,
      maxCertificates: 100_000,
      maxWait: '10s',
      rateLimit: { perMinute: 1_000_000, burst: 100_000 },
    };
    const stack = await StackProcess.start({ issuers: { internal: { type: 'local-ca' } }, onDemand });
    stopping.push(() => stack.stop());
    const forge = await StackProcess.start({ issuers: { internal: { type: 'local-ca' } }, onDemand: { ...onDemand, forge: true } });
    stopping.push(() => forge.stop());
    const { ask: _ask, ...noAsk } = onDemand;
    const local = await StackProcess.start({ issuers: { internal: { type: 'local-ca' } }, onDemand: { ...noAsk, forge: true } });
    stopping.push(() => local.stop());
    const layout = certDirLayout(forge.certDir);
    const bare = await startBareForge({ caFile: layout.forgeCaFile, defaultCert: layout.forgeDefaultCert, cacheSize: onDemand.maxCertificates });
    stopping.push(() => bare.stop());
    const caddy = await startCaddy(peers.caddy!, { askUrl: client.askUrl });
    stopping.push(() => caddy.stop());
    const floor = await startOnDemandFloor(client.askUrl);
    stopping.push(() => floor.stop());
    const out = await measure({ stack, forge, local, caddy, floor, bare }, r);
    stopping.push(() => out.direct.stop());
    pidSame = out.pidSame;
  } finally {
    for (const stop of stopping.reverse()) await stop().catch((err: Error) => log(`stop: ${err.message}`));
  }

  const { table, verdicts } = report(r, pidSame);
  const command = QUICK ? 'npm run bench:ondemand -- --quick' : 'npm run bench:ondemand';
  const header = [
    `Run ${new Date().toISOString()} · \`${command}\` · ${num((performance.now() - started) / 1000)} s in all`,
    '',
    ...machineLines([{ name: 'caddy', version: `${versionOf(peers.caddy!, ['version'])} (Debian ${debianVersion('caddy')})` }]),
    `- load average (1 min) at start / end: ${loadBefore} / ${loadAverage()}`,
  ];
  console.log(`\n${header.join('\n')}\n\n${table}\n\n${verdicts.join('\n')}`);
  if (QUICK) {
    log('--quick: bench/RESULTS.md left as it is');
    return;
  }
  await refreshSection(
    RESULTS_FILE,
    'ondemand',
    'Benchmark results',
    [
      '## On-demand TLS: certd (push and forge) vs Caddy 2.6 vs the floors vs HAProxy direct (`bench/ondemand.ts`)',
      '',
      ...header,
      '',
      table,
      '',
      ...verdicts,
      '',
      'Client: node:tls on a worker thread of the bench process, a new TCP connection and a full handshake (TLS 1.3, no session reuse) each,',
      'timed from connect to the server certificate. "First handshake" = the first ever for that name: certd goes SNI hop →',
      'Lua → daemon → `ask` → local CA (ECDSA P-256) → runtime push → handshake resumes (store and files follow behind); Caddy asks the same',
      '`ask` endpoint and issues from its internal CA (ECDSA P-256). Sequential names rotate certd, certd forge, forge local, Caddy, the floor and bare forge name by name; the',
      `concurrent runs rotate certd, certd forge, forge local, Caddy and bare forge in batches of ${CONCURRENCY}. Steady state rotates certd, certd forge, HAProxy direct (a second HAProxy binding the`,
      `daemon's crt-list with no SNI hop) and Caddy in blocks of ${STEADY_BLOCK} handshakes over the known names. Each daemon runs in a Node`,
      'process of its own (as in production, and as Caddy does), so does the floor\'s endpoint; the client and the `ask` endpoint share a worker thread of the bench process; every HAProxy is a separate process too.',
      'certd forge (onDemand.forge): SNI hop → Lua → daemon (policy + `ask`, decision only) → HAProxy\'s `generate-certificates` bind signs from the',
      'daemon\'s name-constrained intermediate; the real certificate is issued and pushed behind. Bare forge: one HAProxy bind with `generate-certificates`',
      'on the forge stack\'s intermediate and key, no hop, no Lua, no daemon. Forge, local decision: a third stack, forge with no `ask`: SNI hop → Lua checks the',
      'patterns and spends one unit of its daemon grant (refreshed every 250 ms by a Lua task) → the `generate-certificates` bind; no call in the handshake.',
    ].join('\n'),
  );
  log(`wrote ${RESULTS_FILE}`);
}

await main();
