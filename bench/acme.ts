/**
 * ACME issuance against one private Pebble, side by side in one run (issue #4):
 *
 *  - certd: the daemon + one managed HAProxy (startStack with an `acme` issuer); HTTP-01 is
 *    answered by HAProxy itself from acme.map; the batch is N concurrent `POST /v1/certs` (one
 *    name each, one ACME account), each resolving once the certificate is served;
 *  - certbot (Debian `certbot`): `certbot certonly --standalone`, one run per name, sequential
 *    (one config dir cannot be used by two certbot runs at once);
 *  - lego (Debian `lego`): `lego --http run`, one run per name, sequential (each run binds the
 *    HTTP-01 port).
 * Only one of them listens on Pebble's HTTP-01 port at a time: the phases run one after another
 * (certd's stack is stopped before certbot starts). Every client registers its account in an
 * untimed warm-up issuance first; all ask for ECDSA P-256 keys.
 *
 *  - HAProxy 3.2's own ACME client (bench/lib/haproxy-acme.ts): one `acme` section, one
 *    `ssl-f-use … acme` line per name, orders started with `acme renew` on its CLI, all at once.
 * The whole bench runs on HAProxy 3.2 (scripts/haproxy-versions.sh; CERTD_HAPROXY_BIN when set),
 * so certd and the native client share one binary. Per client, one name alone is also timed, and
 * what an HAProxy restart keeps (3.2 holds ACME certificates in memory only).
 *
 * Then renewal → served, N_RENEW times each: certd re-issues a served certificate
 * (`service.ensure(names, { force: true })`), timed from the moment the issuer returned (CertService
 * records it through Metrics.issued) to the first handshake presenting the new serial; the classic
 * path times `certbot renew --force-renewal`'s exit (the deploy-hook moment) → `cat fullchain
 * privkey > pem` → HAProxy reload → first handshake with the new serial, on an HAProxy serving
 * the same number of certificates.
 *
 * Run: npm run bench:acme            (50 names each, 5 renewals each; ~10 minutes, mostly lego)
 *      npm run bench:acme -- --quick (10 names, 3 renewals; prints, leaves RESULTS.md alone)
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DaemonClient } from '../src/cli/daemon-client.js';
import { makeDeployEntry } from '../src/haproxy/deploy/entry.js';
import type { IssueResult } from '../src/service/cert-service.js';
import { startPebble, type TestPebble } from '../test/helpers/pebble.js';
import { freePort } from '../test/helpers/ports.js';
import { handshake, startStack } from '../test/helpers/stack.js';
import { haproxyBinary } from '../src/haproxy/managed/managed-haproxy.js';
import { servedAt } from './lib/handshakes.js';
import { startNativeAcme, startPebbleShim } from './lib/haproxy-acme.js';
import { startBenchHaproxy } from './lib/instance.js';
import { makeLeaves } from './lib/leaves.js';
import { debianVersion, loadAverage, machineLines, versionOf } from './lib/machine.js';
import { histogramTotals, meanMsBetween } from './lib/metrics.js';
import { requirePeers, runPeer } from './lib/peers.js';
import { waitForQuiet } from './lib/quiet.js';
import { refreshSection } from './lib/results.js';
import { median, ms, num, ratio } from './lib/stats.js';
import { markdownTable, verdict } from './lib/table.js';

const QUICK = process.argv.includes('--quick');
const BATCH = QUICK ? 10 : 50;
const N_RENEW = QUICK ? 3 : 5;
const GOAL_VS_CERTBOT = 5;
const GOAL_RENEW_SERVED_MS = 50;
const EMAIL = 'ops@example.com';
const DEPLOY_HISTOGRAM = 'certd_deploy_duration_seconds';
/** Bound on one native order (acme renew → served); past it the name counts as failed. */
const NATIVE_WAIT_MS = 180_000;
const RESULTS_FILE = fileURLToPath(new URL('./RESULTS.md', import.meta.url));

interface Env {
  pebble: TestPebble;
  httpPort: number;
  /** Pebble's own TLS certificate, as a file: what every client must trust. */
  caFile: string;
  bins: Record<string, string>;
}

interface BatchResult {
  wallMs: number;
  /** One process run per name (peers); empty for certd (concurrent). */
  perRunMs: number[];
}

/** What an HAProxy restart left served: how many of the issued names still get their certificate. */
interface RestartResult {
  kept: number;
  of: number;
}

/** HAProxy 3.2's ACME client: times from `acme renew` to the certificate served. */
interface NativeResult {
  oneMs: number | undefined;
  /** Wall time until the last of the batch was served (the failed ones not waited past the bound). */
  batchMs: number;
  failed: number;
  renewalsMs: number[];
  /** Renewals not served within the bound. */
  renewalsFailed: number;
  restart: RestartResult;
}

interface CertdRenewal {
  /** Issuer returned → first handshake with the new serial. */
  servedMs: number;
  /** Issuer returned → ensure() resolved (store + files + runtime push, all instances answered). */
  resolvedMs: number;
  /** Mean time of the runtime `update` operations in that renewal (deployer metrics). */
  pushMs: number;
}

interface ClassicRenewal {
  /** certbot renew's exit → first handshake with the new serial. */
  servedMs: number;
  /** certbot renew's exit → reload() resolved (the new worker answers). */
  reloadedMs: number;
  /** The certbot renew run itself (issuance), for reference. */
  certbotMs: number;
}

function log(line: string): void {
  process.stderr.write(`[bench:acme] ${line}\n`);
}

function sanOf(pem: string): string[] {
  return (new X509Certificate(pem).subjectAltName ?? '').split(', ').map((s) => s.replace(/^DNS:/, ''));
}

function serialOf(pem: string): string {
  return new X509Certificate(pem).serialNumber.toLowerCase();
}

/** Right after a restart: how many of `names` are served a certificate that verifies against `ca`. */
async function keptAfterRestart(port: number, names: string[], ca: string): Promise<RestartResult> {
  let kept = 0;
  for (const name of names) if ((await handshake(port, name, { ca })).authorized) kept++;
  return { kept, of: names.length };
}

interface CertdResult {
  batch: BatchResult;
  renewals: CertdRenewal[];
  oneMs: number;
  restart: RestartResult;
}

async function certdPhase(env: Env): Promise<CertdResult> {
  const stack = await startStack(
    { issuers: { le: { type: 'acme', directory: env.pebble.directoryUrl, caBundle: env.caFile, challenge: 'http-01', email: EMAIL } } },
    {},
    { acmeHttpPort: env.httpPort },
  );
  try {
    const api = new DaemonClient(stack.daemon.api.url, stack.daemon.token);
    const issue = (name: string) => api.call<IssueResult>('POST', '/certs', { names: [name], issuer: 'le' });
    await issue('warmup-certd.acme.bench');
    const tOne = performance.now();
    const one = await issue('one-certd.acme.bench');
    if ((await handshake(stack.tlsPort, 'one-certd.acme.bench')).serial !== one.cert.serial) throw new Error('certd: one-certd.acme.bench is not served after issue');
    const oneMs = performance.now() - tOne;
    log(`certd: one name ${ms(oneMs)}`);
    const names = Array.from({ length: BATCH }, (_, i) => `d${i}.acme.bench`);
    log(`certd: ${BATCH} names, ${BATCH} concurrent orders on one account`);
    const t0 = performance.now();
    const results = await Promise.all(names.map(issue));
    const wallMs = performance.now() - t0;
    log(`  ${ms(wallMs)}`);
    for (const [i, r] of results.entries()) {
      if (!r.issued || r.deploy?.ok.length !== 1) throw new Error(`certd: ${names[i]} not issued and deployed: ${JSON.stringify(r.deploy)}`);
      const served = await handshake(stack.tlsPort, names[i]!);
      if (served.serial !== r.cert.serial || served.san.join() !== names[i]) throw new Error(`certd: ${names[i]} is not served after issue`);
    }

    // The moment the issuer's answer is in: CertService reports it through Metrics.issued.
    const metrics = stack.daemon.metrics;
    const reportIssued = metrics.issued.bind(metrics);
    let issuedAt = Number.NaN;
    metrics.issued = (issuer, result, startedMs) => {
      if (result === 'ok') issuedAt = performance.now();
      reportIssued(issuer, result, startedMs);
    };
    const renewals: CertdRenewal[] = [];
    for (let k = 0; k < N_RENEW; k++) {
      const name = names[k]!;
      const pushBefore = await histogramTotals(metrics.registry, DEPLOY_HISTOGRAM, { op: 'update' });
      issuedAt = Number.NaN;
      const r = await stack.daemon.service.ensure([name], { issuer: 'le', force: true });
      const resolvedAt = performance.now();
      const at = await servedAt(stack.tlsPort, name, r.cert.serial, 10_000);
      if (!r.issued || r.cert.serial === results[k]!.cert.serial) throw new Error(`certd: ${name} was not renewed`);
      renewals.push({
        servedMs: at - issuedAt,
        resolvedMs: resolvedAt - issuedAt,
        pushMs: meanMsBetween(pushBefore, await histogramTotals(metrics.registry, DEPLOY_HISTOGRAM, { op: 'update' })),
      });
      log(`  renewal ${k + 1}/${N_RENEW}: issuer returned → served ${ms(renewals.at(-1)!.servedMs)}`);
    }
    await stack.haproxy.restart();
    const restart = await keptAfterRestart(stack.tlsPort, names, await env.pebble.root(0));
    log(`  after an HAProxy restart: ${restart.kept}/${restart.of} still served`);
    return { batch: { wallMs, perRunMs: [] }, renewals, oneMs, restart };
  } finally {
    await stack.stop();
  }
}

async function certbotPhase(env: Env): Promise<{ batch: BatchResult; renewals: ClassicRenewal[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'certd-bench-certbot-'));
  const dirs = ['--config-dir', join(dir, 'config'), '--work-dir', join(dir, 'work'), '--logs-dir', join(dir, 'logs')];
  const certbot = (args: string[]) => runPeer(env.bins.certbot!, [...args, ...dirs], { env: { REQUESTS_CA_BUNDLE: env.caFile } });
  const certonly = (name: string) =>
    certbot([
      'certonly', '--standalone', '--non-interactive', '--agree-tos', '-m', EMAIL, '--no-eff-email',
      '--server', env.pebble.directoryUrl, '--preferred-challenges', 'http',
      '--http-01-address', '127.0.0.1', '--http-01-port', String(env.httpPort),
      '--key-type', 'ecdsa', '--elliptic-curve', 'secp256r1', '-d', name,
    ]);
  const live = (name: string) => ({ chain: join(dir, 'config', 'live', name, 'fullchain.pem'), key: join(dir, 'config', 'live', name, 'privkey.pem') });
  try {
    await certonly('warmup-certbot.acme.bench');
    const names = Array.from({ length: BATCH }, (_, i) => `cb${i}.acme.bench`);
    log(`certbot: ${BATCH} names, one \`certbot certonly\` each, sequential`);
    const perRunMs: number[] = [];
    const t0 = performance.now();
    for (const name of names) perRunMs.push((await certonly(name)).ms);
    const wallMs = performance.now() - t0;
    log(`  ${ms(wallMs)}`);
    for (const name of names) if (sanOf(await readFile(live(name).chain, 'utf8')).join() !== name) throw new Error(`certbot: no certificate for ${name}`);

    // The classic deploy: an HAProxy serving the same number of certificates as certd's, from files.
    const [defaultLeaf] = await makeLeaves(1, 'default');
    const h = await startBenchHaproxy(defaultLeaf!.bundle);
    try {
      const all = ['warmup-certbot.acme.bench', ...names];
      const entries = await Promise.all(
        all.map(async (name) => {
          const [certPem, keyPem] = await Promise.all([readFile(live(name).chain, 'utf8'), readFile(live(name).key, 'utf8')]);
          return makeDeployEntry(h.certDir, { id: name, bundle: { certPem, keyPem }, sni: [name] });
        }),
      );
      await h.files.writeEntries(entries);
      await h.files.writeCrtList([h.defaultEntry, ...entries]);
      await h.haproxy.reload();
      const renewals: ClassicRenewal[] = [];
      for (let k = 0; k < N_RENEW; k++) {
        const name = names[k]!;
        const before = serialOf(await readFile(live(name).chain, 'utf8'));
        await servedAt(h.tlsPort, name, before, 10_000);
        const run = await certbot(['renew', '--cert-name', name, '--force-renewal', '--no-random-sleep-on-renew']);
        // certbot has exited: the renewed files are in live/, where a deploy hook would pick them up.
        const t0r = performance.now();
        const [chain, key] = await Promise.all([readFile(live(name).chain, 'utf8'), readFile(live(name).key, 'utf8')]);
        await writeFile(join(h.certDir, `${name}.pem`), chain + key);
        await h.haproxy.reload();
        const reloadedAt = performance.now();
        const serial = serialOf(chain);
        if (serial === before) throw new Error(`certbot: ${name} was not renewed`);
        const at = await servedAt(h.tlsPort, name, serial);
        renewals.push({ servedMs: at - t0r, reloadedMs: reloadedAt - t0r, certbotMs: run.ms });
        log(`  renewal ${k + 1}/${N_RENEW}: certbot exit → served ${ms(renewals.at(-1)!.servedMs)} (certbot renew itself ${ms(run.ms)})`);
      }
      return { batch: { wallMs, perRunMs }, renewals };
    } finally {
      await h.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function legoPhase(env: Env): Promise<BatchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'certd-bench-lego-'));
  const run = (name: string) =>
    runPeer(
      env.bins.lego!,
      [
        '--server', env.pebble.directoryUrl, '--email', EMAIL, '--accept-tos', '--key-type', 'ec256',
        '--http', '--http.port', `127.0.0.1:${env.httpPort}`, '--path', dir, '-d', name, 'run',
      ],
      { env: { LEGO_CA_CERTIFICATES: env.caFile } },
    );
  try {
    await run('warmup-lego.acme.bench');
    const names = Array.from({ length: BATCH }, (_, i) => `lg${i}.acme.bench`);
    log(`lego: ${BATCH} names, one \`lego run\` each, sequential`);
    const perRunMs: number[] = [];
    const t0 = performance.now();
    for (const name of names) perRunMs.push((await run(name)).ms);
    const wallMs = performance.now() - t0;
    log(`  ${ms(wallMs)}`);
    for (const name of names) {
      if (sanOf(await readFile(join(dir, 'certificates', `${name}.crt`), 'utf8')).join() !== name) throw new Error(`lego: no certificate for ${name}`);
    }
    return { wallMs, perRunMs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function nativePhase(env: Env): Promise<NativeResult> {
  const shim = await startPebbleShim(env.pebble.directoryUrl, env.pebble.tlsCaPem);
  const names = Array.from({ length: BATCH }, (_, i) => `n${i}.acme.bench`);
  const ca = await env.pebble.root(0);
  try {
    const h = await startNativeAcme({ names: ['warmup-native.acme.bench', 'one-native.acme.bench', ...names], directoryUrl: shim.directoryUrl, httpPort: env.httpPort, email: EMAIL });
    try {
      // Served: `acme status` shows a new notAfter (polled every 100 ms, one CLI command for all),
      // then a handshake presents a certificate that verifies against Pebble's root. Resolves with
      // the time of that handshake per name, undefined for a name not done within the bound.
      const served = async (batch: string[], before: Awaited<ReturnType<typeof h.status>>): Promise<(number | undefined)[]> => {
        const at = new Map<string, number | undefined>();
        const deadline = performance.now() + NATIVE_WAIT_MS;
        while (at.size < batch.length && performance.now() < deadline) {
          await new Promise((r) => setTimeout(r, 100));
          const now = await h.status();
          for (const name of batch) {
            if (at.has(name)) continue;
            const row = now.get(h.certPath(name));
            if (!row || row.state === 'Running' || row.expires === before.get(h.certPath(name))?.expires) continue;
            at.set(name, (await handshake(h.tlsPort, name, { ca })).authorized ? performance.now() : undefined);
          }
        }
        return batch.map((name) => at.get(name));
      };
      const timed = async (batch: string[]) => {
        const before = await h.status();
        const t0 = performance.now();
        await h.renew(batch);
        return (await served(batch, before)).map((at) => (at === undefined ? undefined : at - t0));
      };
      if ((await timed(['warmup-native.acme.bench']))[0] === undefined) throw new Error('native: the warm-up certificate was not issued');
      const [oneMs] = await timed(['one-native.acme.bench']);
      log(`haproxy 3.2 acme: one name ${oneMs === undefined ? 'FAILED' : ms(oneMs)}`);
      log(`haproxy 3.2 acme: ${BATCH} names, \`acme renew\` for all at once`);
      const batch = await timed(names);
      const failed = batch.filter((x) => x === undefined).length;
      const batchMs = Math.max(...batch.map((x) => x ?? NATIVE_WAIT_MS));
      log(`  ${ms(batchMs)}, ${failed} failed`);
      const renewalsMs: number[] = [];
      for (let k = 0; k < N_RENEW; k++) {
        const [t] = await timed([names[k]!]);
        if (t !== undefined) renewalsMs.push(t);
        log(`  renewal ${k + 1}/${N_RENEW}: acme renew → served ${t === undefined ? 'FAILED' : ms(t)}`);
      }
      await h.haproxy.restart();
      const restart = await keptAfterRestart(h.tlsPort, names, ca);
      log(`  after an HAProxy restart: ${restart.kept}/${restart.of} still served`);
      return { oneMs, batchMs, failed, renewalsMs, renewalsFailed: N_RENEW - renewalsMs.length, restart };
    } finally {
      await h.stop();
    }
  } finally {
    await shim.close();
  }
}

/** HAProxy 3.2 for the whole bench (the native peer needs it): CERTD_HAPROXY_BIN, else the script's. */
function useHaproxy32(): void {
  if (!process.env.CERTD_HAPROXY_BIN) {
    const script = fileURLToPath(new URL('../scripts/haproxy-versions.sh', import.meta.url));
    process.env.CERTD_HAPROXY_BIN = execFileSync('bash', [script, '3.2'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  }
  const version = execFileSync(haproxyBinary(), ['-v'], { encoding: 'utf8' });
  if (!/version 3\.([2-9]|\d\d)\./.test(version)) throw new Error(`bench:acme needs HAProxy ≥ 3.2 for its native ACME peer; CERTD_HAPROXY_BIN runs: ${version.split('\n')[0]}`);
}

function nativeTable(certd: CertdResult, native: NativeResult | { error: string }): string {
  if ('error' in native) return markdownTable(['same HAProxy 3.2 binary, same Pebble', 'HAProxy 3.2 `acme` section'], [['**failed**', native.error]]);
  const kept = (r: RestartResult) => `${r.kept}/${r.of} served`;
  return markdownTable(
    ['same HAProxy 3.2 binary, same Pebble', 'certd (runtime API)', 'HAProxy 3.2 `acme` section'],
    [
      ['how', '`POST /v1/certs`, concurrent for the batch', '`acme renew <crt>` on the CLI, all at once for the batch'],
      ['**one name: asked → served**', `**${ms(certd.oneMs)}**`, `**${native.oneMs === undefined ? 'failed' : ms(native.oneMs)}**`],
      [`**${BATCH} names: asked → all served**`, `**${ms(certd.batch.wallMs)}**`, `**${ms(native.batchMs)}**${native.failed > 0 ? ` (${native.failed} failed)` : ''}`],
      ['  native ÷ certd (one / batch)', '1×', `${native.oneMs === undefined ? 'n/a' : ratio(native.oneMs / certd.oneMs)} / ${ratio(native.batchMs / certd.batch.wallMs)}`],
      [
        `renewal, median (min–max), n=${N_RENEW}`,
        `issuer returned → served ${minMax(certd.renewals.map((r) => r.servedMs))}`,
        `acme renew → served (whole order) ${minMax(native.renewalsMs)}`,
      ],
      ['after an HAProxy restart', `${kept(certd.restart)} (PEM files + crt-list on disk)`, `${kept(native.restart)} (certificates lived in memory; back to the files on disk)`],
      ['failures (not served within the bound)', '0 (any would have stopped the run)', `${native.failed} of ${BATCH + 1} orders, ${native.renewalsFailed} of ${N_RENEW} renewals`],
    ],
  );
}

function report(
  certd: CertdResult,
  certbot: { batch: BatchResult; renewals: ClassicRenewal[] },
  lego: BatchResult,
): { batchTable: string; renewTable: string; verdicts: string[] } {
  const perCert = (b: BatchResult) => b.wallMs / BATCH;
  const batchTable = markdownTable(
    ['', 'certd', 'certbot', 'lego'],
    [
      [
        'how',
        `${BATCH} concurrent \`POST /v1/certs\`, one account`,
        'one `certbot certonly --standalone` per name, sequential',
        'one `lego --http run` per name, sequential',
      ],
      [`**${BATCH} single-name certificates, wall time**`, `**${ms(certd.batch.wallMs)}**`, `**${ms(certbot.batch.wallMs)}**`, `**${ms(lego.wallMs)}**`],
      ['  per certificate (wall ÷ N)', ms(perCert(certd.batch)), ms(perCert(certbot.batch)), ms(perCert(lego))],
      ['  one run, median (min–max)', '—', minMax(certbot.batch.perRunMs), minMax(lego.perRunMs)],
      ['**÷ certd** (wall time)', '1×', `**${ratio(certbot.batch.wallMs / certd.batch.wallMs)}**`, `**${ratio(lego.wallMs / certd.batch.wallMs)}**`],
    ],
  );
  const c = (f: (r: CertdRenewal) => number) => certd.renewals.map(f);
  const k = (f: (r: ClassicRenewal) => number) => certbot.renewals.map(f);
  const servedCertd = median(c((r) => r.servedMs));
  const servedClassic = median(k((r) => r.servedMs));
  const renewTable = markdownTable(
    ['', 'certd (runtime API)', 'certbot + cat + reload'],
    [
      [`**renewed → served**, median (min–max), n=${certd.renewals.length}`, `**${minMax(c((r) => r.servedMs))}**`, `**${minMax(k((r) => r.servedMs))}**`],
      ['  of which until the call returned / the reload resolved', ms(median(c((r) => r.resolvedMs))), ms(median(k((r) => r.reloadedMs)))],
      ['  runtime push of the update (deployer metrics), median', ms(median(c((r) => r.pushMs))), '—'],
      ['**classic ÷ certd**', '1×', `**${ratio(servedClassic / servedCertd)}**`],
      ['(the renewal issuance itself, median: not in the times above)', '—', `certbot renew ${ms(median(k((r) => r.certbotMs)))}`],
    ],
  );
  const vsCertbot = certbot.batch.wallMs / certd.batch.wallMs;
  const verdicts = [
    `- batch: certbot ÷ certd = ${ratio(vsCertbot)} → goal ≥ ${GOAL_VS_CERTBOT}× ${verdict(vsCertbot, GOAL_VS_CERTBOT, true)}; lego ÷ certd = ${ratio(lego.wallMs / certd.batch.wallMs)}`,
    `- renewed → served: certd ${ms(servedCertd)} → goal ≤ ${GOAL_RENEW_SERVED_MS} ms ${verdict(servedCertd, GOAL_RENEW_SERVED_MS)}; the certbot + cat + reload path takes ${ratio(servedClassic / servedCertd)} as long`,
    `- checks: every certd certificate was served with its serial when its call returned; every certbot and lego certificate file names exactly its name; every renewal presented a new serial`,
  ];
  return { batchTable, renewTable, verdicts };
}

function minMax(xs: number[]): string {
  return xs.length === 0 ? 'n/a' : `${ms(median(xs))} (${ms(Math.min(...xs))}–${ms(Math.max(...xs))})`;
}

async function main(): Promise<void> {
  const bins = requirePeers('bench:acme', { pebble: 'pebble', 'pebble-challtestsrv': 'pebble', certbot: 'certbot', lego: 'lego' });
  useHaproxy32();
  await waitForQuiet(log);
  const started = performance.now();
  const loadBefore = loadAverage();
  const httpPort = await freePort();
  // No nonce rejections: Pebble's default 5 % would add retries unrelated to the clients compared.
  const pebble = await startPebble({ httpPort, nonceRejectPercent: 0 });
  let results: [CertdResult, Awaited<ReturnType<typeof certbotPhase>>, BatchResult];
  let native: NativeResult | { error: string };
  try {
    const caFile = join(pebble.dir, 'pebble-tls.pem');
    await writeFile(caFile, pebble.tlsCaPem);
    const env: Env = { pebble, httpPort, caFile, bins };
    const certd = await certdPhase(env);
    await waitForQuiet(log);
    const certbot = await certbotPhase(env);
    await waitForQuiet(log);
    const lego = await legoPhase(env);
    await waitForQuiet(log);
    // A peer that fails is reported, not fatal: the other columns are still worth having.
    native = await nativePhase(env).catch((err: Error) => {
      log(`haproxy 3.2 acme: FAILED: ${err.message}`);
      return { error: err.message };
    });
    results = [certd, certbot, lego];
  } finally {
    await pebble.stop();
  }

  const { batchTable, renewTable, verdicts } = report(...results);
  const native32 = nativeTable(results[0], native);
  const command = QUICK ? 'npm run bench:acme -- --quick' : 'npm run bench:acme';
  const header = [
    `Run ${new Date().toISOString()} · \`${command}\` · ${num((performance.now() - started) / 1000)} s in all`,
    '',
    ...machineLines([
      { name: 'pebble', version: `Debian ${debianVersion('pebble')} (PEBBLE_VA_NOSLEEP=1, no nonce rejection, HTTP-01 validated for real)` },
      { name: 'certbot', version: `${versionOf(bins.certbot!, ['--version'])} (Debian ${debianVersion('certbot')})` },
      { name: 'lego', version: `Debian ${debianVersion('lego')}` },
    ]),
    `- load average (1 min) at start / end: ${loadBefore} / ${loadAverage()}`,
  ];
  console.log(`\n${header.join('\n')}\n\n${batchTable}\n\n${renewTable}\n\n${native32}\n\n${verdicts.join('\n')}`);
  if (QUICK) {
    log('--quick: bench/RESULTS.md left as it is');
    return;
  }
  await refreshSection(
    RESULTS_FILE,
    'acme',
    'Benchmark results',
    [
      "## ACME: certd vs certbot vs lego vs HAProxy 3.2's own ACME against Pebble (`bench/acme.ts`)",
      '',
      ...header,
      '',
      batchTable,
      '',
      renewTable,
      '',
      native32,
      '',
      ...verdicts,
      '',
      'One Pebble for all four; the phases run one after another (one HTTP-01 listener at a time). certd answers HTTP-01 from',
      "HAProxy's acme.map, and its wall time includes storing and deploying every certificate to HAProxy; certbot and lego",
      'only write files. Each client registered its account in an untimed warm-up issuance. "Renewed → served": certd from',
      "the issuer's answer (CertService's Metrics.issued) to the first TLS handshake presenting the new serial; classic from",
      "certbot renew's exit to the same, through `cat fullchain privkey > pem` and an HAProxy reload (SIGUSR2, master-worker),",
      `on an HAProxy serving the same ${BATCH + 2} certificates. HAProxy 3.2's ACME client (\`acme.scheduler off\`, each order`,
      'started by `acme renew`; HTTP-01 from its `virt@acme` map) talks to Pebble through a shim that adds the Content-Length',
      "3.2's httpclient leaves out of its POSTs and Debian's Pebble requires (bench/lib/haproxy-acme.ts); served = `acme status`",
      "shows the new notAfter (polled every 100 ms) and a handshake verifies against Pebble's root.",
    ].join('\n'),
  );
  log(`wrote ${RESULTS_FILE}`);
}

await main();
