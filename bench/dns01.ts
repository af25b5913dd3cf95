/**
 * Time to a wildcard certificate over DNS-01 (issue #16), certd and lego side by side on one
 * private Pebble validating through a private recursive bind9 (test/helpers/dns01-world.ts):
 *
 *  - RFC 2136 direct: `*.one.test` + `one.test`, written on the `delegated` server with its key;
 *  - CNAME-delegated: `*.customer.test` + `customer.test`, whose `_acme-challenge` is a CNAME into
 *    acme.delegated.test (the customer's server holds no key);
 *  - exec hook: `*.hook.test` + `hook.test` through a bash hook running nsupdate (lego's protocol).
 *
 * certd: AcmeIssuer.issue() in this process, timed from the call to the chain in hand (key,
 * order, records, propagation check at the primary, validation, finalize, download). lego
 * (Debian `lego`, providers `rfc2136` and `exec`, `--dns.disable-cp`: the test zones' NS records
 * point at port 53, where nothing listens): the process's wall time, account already registered.
 * Both lego providers solve a name and its wildcard one after the other with a "sequence
 * interval" between them (60 s by default); it is set to its 1 s minimum here, and the polling
 * interval to 1 s.
 * Rounds alternate certd and lego per scenario; 1.5 s between runs lets the resolvers' 1 s caches
 * forget the previous values. Failures are counted per client and scenario.
 *
 * Run: npm run bench:dns01              (5 runs each; ~2 minutes)
 *      npm run bench:dns01 -- --quick   (2 runs each; prints, leaves RESULTS.md alone)
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { configFromObject } from '../src/config/load.js';
import { createIssuers } from '../src/daemon/issuers.js';
import type { AcmeIssuer } from '../src/issuers/acme/issuer.js';
import { FsStore } from '../src/store/fs/fs-store.js';
import { startDns01World } from '../test/helpers/dns01-world.js';
import { startPebble } from '../test/helpers/pebble.js';
import { freePort } from '../test/helpers/ports.js';
import { debianVersion, loadAverage, machineLines } from './lib/machine.js';
import { requirePeers } from './lib/peers.js';
import { refreshSection } from './lib/results.js';
import { median, ms, ratio } from './lib/stats.js';
import { markdownTable } from './lib/table.js';

const run = promisify(execFile);
const RESULTS_FILE = fileURLToPath(new URL('./RESULTS.md', import.meta.url));
const QUICK = process.argv.includes('--quick');
const RUNS = QUICK ? 2 : 5;
const BETWEEN_RUNS_MS = 1_500;

interface Scenario {
  label: string;
  /** The certd issuer id (one per scenario, its own solvers). */
  issuer: string;
  domain: string;
  /** lego's provider and its environment. */
  lego: { provider: 'rfc2136' | 'exec'; env: Record<string, string> };
}

interface Tally {
  times: number[];
  failures: number;
  lastError?: string;
}

async function main(): Promise<void> {
  const peers = requirePeers('bench:dns01', { lego: 'lego' });
  const started = Date.now();
  const world = await startDns01World();
  const pebble = await startPebble({ httpPort: await freePort(), dnsServer: world.caResolver.server, authzReusePercent: 0 });
  let store: FsStore | undefined;
  let issuers: Map<string, AcmeIssuer> | undefined;
  try {
    const caBundle = join(world.dir, 'pebble-tls.pem');
    await writeFile(caBundle, pebble.tlsCaPem);
    const hook = await world.nsupdateHook();
    const { delegated, other, delegatedKey } = world;
    const check = (server: string) => ({ servers: [server], timeout: '30s', interval: '100ms' });
    const acme = (solvers: unknown[]) => ({
      type: 'acme',
      directory: pebble.directoryUrl,
      caBundle,
      challenge: 'dns-01',
      dns: { resolver: world.resolver.server, solvers },
    });
    const config = configFromObject(
      {
        dataDir: join(world.dir, 'data'),
        haproxy: { certDir: join(world.dir, 'certs') },
        issuers: {
          direct: acme([{ zones: ['one.test'], rfc2136: { server: delegated.server, zone: 'one.test', tsig: delegatedKey }, propagation: check(delegated.server) }]),
          cname: acme([
            { zones: ['acme.delegated.test'], rfc2136: { server: delegated.server, zone: 'acme.delegated.test', tsig: delegatedKey }, propagation: check(delegated.server) },
          ]),
          exec: acme([{ zones: ['hook.test'], exec: { command: [hook], timeout: '30s' }, propagation: check(other.server) }]),
        },
      },
      world.dir,
    );
    store = await FsStore.open(config.dataDir);
    issuers = (await createIssuers(config, store)) as Map<string, AcmeIssuer>;

    const rfc2136Env = (server: string, key: typeof delegatedKey) => ({
      RFC2136_NAMESERVER: server,
      RFC2136_TSIG_KEY: `${key.name}.`,
      RFC2136_TSIG_SECRET: key.secret,
      RFC2136_TSIG_ALGORITHM: `${key.algorithm}.`,
      RFC2136_PROPAGATION_TIMEOUT: '30',
      RFC2136_POLLING_INTERVAL: '1',
      RFC2136_SEQUENCE_INTERVAL: '1',
    });
    const scenarios: Scenario[] = [
      { label: 'RFC 2136 direct', issuer: 'direct', domain: 'one.test', lego: { provider: 'rfc2136', env: rfc2136Env(delegated.server, delegatedKey) } },
      { label: 'CNAME-delegated (RFC 2136 at the target)', issuer: 'cname', domain: 'customer.test', lego: { provider: 'rfc2136', env: rfc2136Env(delegated.server, delegatedKey) } },
      { label: 'exec hook (nsupdate)', issuer: 'exec', domain: 'hook.test', lego: { provider: 'exec', env: { EXEC_PATH: hook, EXEC_PROPAGATION_TIMEOUT: '30', EXEC_POLLING_INTERVAL: '1', EXEC_SEQUENCE_INTERVAL: '1' } } },
    ];

    const legoRun = async (s: Scenario): Promise<void> => {
      const out = await run(
        peers.lego!,
        [
          '--server', pebble.directoryUrl, '--accept-tos', '--email', 'bench@example.com', '--path', join(world.dir, `lego-${s.issuer}`),
          '--key-type', 'ec256', '--dns', s.lego.provider, '--dns.resolvers', world.resolver.server, '--dns.disable-cp',
          '--domains', `*.${s.domain}`, '--domains', s.domain, 'run',
        ],
        { env: { ...process.env, ...s.lego.env, LEGO_CA_CERTIFICATES: caBundle }, timeout: 120_000 },
      );
      if (process.env.BENCH_LEGO_LOG) console.log(out.stderr);
    };
    const certdRun = async (s: Scenario): Promise<void> => {
      await issuers!.get(s.issuer)!.issue({ names: [`*.${s.domain}`, s.domain] });
    };
    const timed = async (tally: Tally, work: () => Promise<void>) => {
      const t0 = performance.now();
      try {
        await work();
        tally.times.push(performance.now() - t0);
      } catch (err) {
        tally.failures++;
        tally.lastError = String((err as Error).message ?? err).slice(0, 300);
      }
      await new Promise((r) => setTimeout(r, BETWEEN_RUNS_MS));
    };

    const results = new Map<string, { certd: Tally; lego: Tally }>();
    for (const s of scenarios) {
      const tallies = { certd: { times: [], failures: 0 } as Tally, lego: { times: [], failures: 0 } as Tally };
      results.set(s.label, tallies);
      // Untimed warm-up: account registration for both.
      await timed({ times: [], failures: 0 }, () => certdRun(s));
      await timed({ times: [], failures: 0 }, () => legoRun(s));
      for (let i = 0; i < RUNS; i++) {
        await timed(tallies.certd, () => certdRun(s));
        await timed(tallies.lego, () => legoRun(s));
      }
      console.log(`${s.label}: certd ${ms(median(tallies.certd.times))} (${tallies.certd.failures} failed), lego ${ms(median(tallies.lego.times))} (${tallies.lego.failures} failed)`);
    }

    const rows = scenarios.map((s) => {
      const { certd, lego } = results.get(s.label)!;
      const cm = median(certd.times);
      const lm = median(lego.times);
      return [s.label, `${ms(cm)} (${certd.times.length}/${RUNS})`, `${ms(lm)} (${lego.times.length}/${RUNS})`, ratio(lm / cm), `${certd.failures} / ${lego.failures}`];
    });
    const errors = scenarios.flatMap((s) => {
      const { certd, lego } = results.get(s.label)!;
      return [
        ...(certd.lastError ? [`- certd, ${s.label}: ${certd.lastError}`] : []),
        ...(lego.lastError ? [`- lego, ${s.label}: ${lego.lastError}`] : []),
      ];
    });
    const section = [
      '## DNS-01: time to a wildcard certificate, certd vs lego (`bench/dns01.ts`)',
      '',
      `Run ${new Date().toISOString()} · \`npm run bench:dns01\` · ${Math.round((Date.now() - started) / 1000)} s in all`,
      '',
      ...machineLines([{ name: 'lego', version: debianVersion('lego') }]),
      `- load average (1 min) at end: ${loadAverage()}`,
      '',
      markdownTable(['`*.x` + `x`, Pebble over DNS', 'certd median (ok/runs)', 'lego median (ok/runs)', 'lego / certd', 'failures certd / lego'], rows),
      '',
      `Medians of ${RUNS} runs each after one untimed warm-up (account registration), certd and lego alternating.`,
      'certd is timed inside its process (`AcmeIssuer.issue`), including its propagation check at the zone\'s',
      'primary; lego is the wall time of `lego run` (process start and account load included) with',
      '`--dns.disable-cp` (it checks only through the recursive resolver). lego solves a name and its',
      'wildcard one after the other (its providers\' sequence interval, set to 1 s here; 60 s by default);',
      'certd presents both TXT values, then asks Pebble to validate both.',
      ...(errors.length > 0 ? ['', 'Last error of each client that failed:', ...errors] : []),
    ].join('\n');
    console.log(`\n${section}`);
    if (!QUICK) await refreshSection(RESULTS_FILE, 'dns01', 'Benchmark results', section);
  } finally {
    for (const issuer of issuers?.values() ?? []) issuer.close();
    await store?.close();
    await pebble.stop();
    await world.stop();
  }
}

await main();
