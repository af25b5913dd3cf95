/**
 * Idle cost at N (issue #14): one daemon process (`haproxy-certd run`) with N certificates seeded
 * straight into its fs store (bench/lib/seed-store.ts: API ingest runs ~80/s at 100,000, far too
 * slow to set up a measurement of doing nothing) and one real HAProxy started from the daemon's
 * files. Once the instance is reconciled, the daemon's and the HAProxy worker's CPU seconds over
 * IDLE seconds with nothing changing, the deployer comparing every RECONCILE seconds; the last
 * pass's time, commands and whether it was an unchanged one (`/v1/status` `lastReconcile`).
 *
 * Several daemon builds are measured one after the other on the same store and the same HAProxy
 * (`--cli name=path/to/cli/main.ts`, each run through tsx), alternating per N, so their ratio is
 * taken under the same load. `--cpu-prof DIR` writes a V8 CPU profile of each daemon.
 *
 * Run: node --import tsx bench/idle.ts --sizes 10000,100000 --cli before=/x/src/cli/main.ts --cli after=src/cli/main.ts
 *      [--idle 180] [--reconcile 60] [--cpu-prof /tmp/prof]
 * Only prints; the figures go to bench/RESULTS.md by hand, with the command.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stopChild } from '../test/helpers/children.js';
import { freePort } from '../test/helpers/ports.js';
import { startIn, type PlainHaproxy } from './lib/instance.js';
import { cpuSeconds, loadAverage } from './lib/machine.js';
import { seedStoreFast } from './lib/seed-store.js';
import { ms, num } from './lib/stats.js';

const TOKEN = 'bench-idle-token';
const WAIT_MS = 900_000;

function args(name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < process.argv.length; i++) if (process.argv[i] === `--${name}` && process.argv[i + 1]) out.push(process.argv[i + 1]!);
  return out;
}
const SIZES = (args('sizes')[0] ?? '10000').split(',').map(Number);
const IDLE_S = Number(args('idle')[0] ?? 180);
const RECONCILE_S = Number(args('reconcile')[0] ?? 60);
const PROF_DIR = args('cpu-prof')[0];
const CLIS = args('cli').map((s) => {
  const [name, path] = s.split('=') as [string, string];
  return { name, path: resolve(path) };
});
if (CLIS.length === 0) throw new Error('give at least one --cli name=path/to/cli/main.ts');

interface Pass {
  at: string;
  ms: number;
  commands: number;
  certsRead: number;
  unchanged?: boolean;
}
interface View {
  state: string;
  pending: number;
  inSync: number;
  reconciles?: number;
  reconcilesUnchanged?: number;
  lastReconcile?: Pass;
}

const sleep = (t: number) => new Promise((r) => setTimeout(r, t));
const say = (line: string) => console.error(`# ${line} (load ${loadAverage()})`);


class Daemon {
  child?: ChildProcess;
  constructor(
    readonly cli: { name: string; path: string },
    readonly configFile: string,
    readonly api: string,
  ) {}

  async start(n: number): Promise<void> {
    const prof = PROF_DIR ? ['--cpu-prof', '--cpu-prof-dir', join(PROF_DIR, `${this.cli.name}-${n}`)] : [];
    this.child = spawn(process.execPath, [...prof, '--import', 'tsx', this.cli.path, '--config', this.configFile, 'run'], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, CERTD_LOG_LEVEL: 'warn' },
    });
    await this.until(async () => (await fetch(`${this.api}/healthz`)).status === 200, 'healthz');
  }

  async status(): Promise<View> {
    const res = await fetch(`${this.api}/v1/status`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(120_000) });
    return ((await res.json()) as { instances: View[] }).instances[0]!;
  }

  async until(check: () => Promise<boolean>, what: string): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      if (this.child?.exitCode != null) throw new Error(`${this.cli.name}: the daemon exited (${this.child.exitCode})`);
      if (await check().catch(() => false)) return;
      if (Date.now() > deadline) throw new Error(`${this.cli.name}: ${what} not within ${WAIT_MS} ms`);
      await sleep(1_000);
    }
  }

  async stop(): Promise<void> {
    // A minute's grace: at 100,000 the daemon's stop flushes and closes a large store.
    if (this.child) await stopChild(this.child, 'SIGTERM', 60_000);
  }
}

async function measure(n: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'certd-bench-idle-'));
  const apiPort = await freePort();
  const crtList = join(dir, 'certs', 'crt-list.txt');
  const configFile = join(dir, 'certd.yaml');
  await writeFile(
    configFile,
    `dataDir: ./data
haproxy:
  instances: [{ name: h1, runtime: "unix:${join(dir, 'h1', 'admin.sock')}" }]
  certDir: ./certs
  crtList: ./certs/crt-list.txt
  reconcileEvery: ${RECONCILE_S}s
api: { listen: "127.0.0.1:${apiPort}", token: ${TOKEN} }
`,
  );
  let haproxy: PlainHaproxy | undefined;
  let daemon: Daemon | undefined;
  try {
    const t0 = performance.now();
    await seedStoreFast(join(dir, 'data'), n);
    say(`N=${n}: seeded the store in ${ms(performance.now() - t0)}`);
    for (const cli of CLIS) {
      daemon = new Daemon(cli, configFile, `http://127.0.0.1:${apiPort}`);
      const started = performance.now();
      await daemon.start(n);
      if (!haproxy) {
        // The daemon wrote the files; HAProxy starts from them, as after a host reboot.
        const lines = async () => (await readFile(crtList, 'utf8')).split('\n').filter(Boolean).length;
        await daemon.until(async () => (await lines()) >= n + 1, `the crt-list with ${n} lines`);
        await mkdir(join(dir, 'h1'), { recursive: true });
        const h0 = performance.now();
        haproxy = await startIn(join(dir, 'h1'), crtList, WAIT_MS);
        say(`N=${n}: HAProxy started from the daemon's files in ${ms(performance.now() - h0)}`);
      }
      const d = daemon;
      await d.until(async () => {
        const s = await d.status();
        return s.state === 'up' && s.pending === 0 && s.inSync >= n;
      }, 'reconciled');
      // The first pass of this daemon (first contact: every certificate read) is over; idle from the next one.
      const first = (await d.status()).lastReconcile?.at;
      await d.until(async () => (await d.status()).lastReconcile?.at !== first, 'a periodic pass');
      say(`N=${n} ${cli.name}: reconciled ${ms(performance.now() - started)} after its start`);
      const worker = await haproxy.haproxy.workerPid();
      const before = await d.status();
      const cpu0 = await Promise.all([d.child!.pid!, worker].map(cpuSeconds));
      await sleep(IDLE_S * 1000);
      const cpu1 = await Promise.all([d.child!.pid!, worker].map(cpuSeconds));
      const after = await d.status();
      const daemonS = cpu1[0]! - cpu0[0]!;
      const haproxyS = cpu1[1]! - cpu0[1]!;
      const passes = (after.reconciles ?? 0) - (before.reconciles ?? 0);
      const unchanged = (after.reconcilesUnchanged ?? 0) - (before.reconcilesUnchanged ?? 0);
      const p = after.lastReconcile;
      say(
        `N=${n} ${cli.name}: idle ${IDLE_S} s: daemon ${num(daemonS, 2)} CPU s (${num((daemonS / IDLE_S) * 100, 2)} % of a core), ` +
          `HAProxy worker ${num(haproxyS, 2)} CPU s (${num((haproxyS / IDLE_S) * 100, 2)} %); ${passes} passes (${unchanged} unchanged); ` +
          `last pass ${p ? `${ms(p.ms)}, ${p.commands} commands, ${p.certsRead} read${p.unchanged === undefined ? '' : p.unchanged ? ', unchanged' : ', compared'}` : 'none'}; in sync ${after.inSync}`,
      );
      await d.stop();
      daemon = undefined;
    }
  } finally {
    await daemon?.stop().catch(() => undefined);
    await haproxy?.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

for (const n of SIZES) await measure(n);
