/**
 * Listing at 10,000 certificates: the status page (first page, a search) and `list --json`,
 * against a real daemon (`haproxy-certd run`, a process of its own, as in production) on a store
 * seeded with 10,000 certificates from its local CA. Its one HAProxy instance never answers: what
 * is timed is the listing, not runtime pushes. Writes its section of bench/RESULTS.md.
 *
 *   npm run bench:listing            (N=10000 ROUNDS=20 to change)
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { readToken } from '../src/daemon/token.js';
import { killedAtExit } from '../test/helpers/children.js';
import { freePort } from '../test/helpers/ports.js';
import { eventually } from '../test/helpers/stack.js';
import { seedCerts, seededName } from '../test/helpers/status-certs.js';
import { loadAverage, machineLines } from './lib/machine.js';
import { refreshSection } from './lib/results.js';
import { ms, quantile } from './lib/stats.js';
import { markdownTable } from './lib/table.js';

const N = Number(process.env.N ?? 10_000);
const ROUNDS = Number(process.env.ROUNDS ?? 20);
const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const RESULTS = fileURLToPath(new URL('./RESULTS.md', import.meta.url));
const run = promisify(execFile);

interface Timing {
  p50: number;
  p95: number;
  bytes: number;
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
  return { p50: quantile(samples, 0.5), p95: quantile(samples, 0.95), bytes };
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const load0 = loadAverage();
  const dir = await mkdtemp(join(tmpdir(), 'certd-bench-listing-'));
  try {
    const seedStart = performance.now();
    await seedCerts(join(dir, 'data'), N);
    console.error(`seeded ${N} certificates in ${ms(performance.now() - seedStart)}`);
    const listen = `127.0.0.1:${await freePort()}`;
    const config = join(dir, 'certd.yaml');
    await writeFile(config, `dataDir: ./data\nhaproxy:\n  certDir: ./certs\n  instances: [{ name: h1, runtime: "unix:${join(dir, 'absent.sock')}" }]\napi: { listen: "${listen}" }\n`);
    const daemon = killedAtExit(spawn(process.execPath, [CLI, '--config', config, 'run'], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, CERTD_LOG_LEVEL: 'warn' } }));
    try {
      const base = `http://${listen}`;
      await eventually(async () => (await fetch(`${base}/v1/status`)).status === 401, 300_000, `the daemon answering on ${listen}`);
      const token = (await readToken(join(dir, 'data')))!;
      const login = await fetch(`${base}/status/login`, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ token }) });
      const cookie = login.headers.getSetCookie()[0]!.split(';')[0]!;
      const page = (query: string) => async () => {
        const res = await fetch(`${base}/status${query}`, { headers: { cookie } });
        if (res.status !== 200) throw new Error(`GET /status${query}: ${res.status}`);
        return (await res.arrayBuffer()).byteLength;
      };
      const first = await timed(ROUNDS, page(''));
      const search = await timed(ROUNDS, page(`?q=${seededName(4242)}`));
      const lastPage = await timed(ROUNDS, page(`?page=${Math.ceil(N / 50)}`));
      // The CLI as a script runs it: a new process each time, through the daemon's API.
      const list = await timed(Math.min(ROUNDS, 10), async () => {
        const { stdout } = await run(process.execPath, [CLI, '--config', config, 'list', '--json'], { maxBuffer: 256 * 1024 * 1024 });
        if (JSON.parse(stdout).length !== N) throw new Error('list --json did not list every certificate');
        return stdout.length;
      });
      const kib = (b: number) => `${(b / 1024).toFixed(0)} KiB`;
      const rows = [
        ['status page, first page (50 rows)', ms(first.p50), ms(first.p95), kib(first.bytes)],
        [`status page, search (\`?q=${seededName(4242)}\`, 1 match)`, ms(search.p50), ms(search.p95), kib(search.bytes)],
        ['status page, last page', ms(lastPage.p50), ms(lastPage.p95), kib(lastPage.bytes)],
        ['`haproxy-certd list --json` (new process, via the daemon)', ms(list.p50), ms(list.p95), kib(list.bytes)],
      ];
      const section = [
        `## Listing at ${N.toLocaleString('en-US')} certificates: status page and \`list --json\` (\`bench/listing.ts\`)`,
        '',
        `Run ${new Date(startedAt).toISOString()} · \`npm run bench:listing\` · ${Math.round((Date.now() - startedAt) / 1000)} s in all`,
        '',
        ...machineLines(),
        `- load average (1 min) at start / end: ${load0} / ${loadAverage()}`,
        '',
        markdownTable(['', `p50 (n=${ROUNDS}; list n=${Math.min(ROUNDS, 10)})`, 'p95', 'response'], rows),
        '',
        'Wall time of one request from the bench process (cookie session, a warm-up not counted) to the whole body;',
        "the daemon (`haproxy-certd run`) in its own process, its store seeded with the local CA's certificates (api,",
        'import and source origins, days left spread over 90 days). Each page request reads the whole store',
        '(`service.list()`), computes the summary and histogram of all certificates, then filters and pages on the',
        'server: the store has no index yet, so every request is O(N). `list --json` includes Node starting the CLI.',
      ].join('\n');
      await refreshSection(RESULTS, 'listing', 'Benchmark results', section);
      console.log(section);
    } finally {
      if (daemon.exitCode === null) {
        daemon.kill('SIGTERM');
        await new Promise((r) => daemon.once('exit', r));
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
