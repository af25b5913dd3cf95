import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFile, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { configFromObject, loadConfig } from '../src/config/load.js';
import { silentLogger } from '../src/core/log.js';
import { Daemon } from '../src/daemon/daemon.js';
import { onDemandSnippetOptions } from '../src/daemon/haproxy-snippets.js';
import { writeInitialHaproxyFiles } from '../src/daemon/initial-files.js';
import { EMBEDDED_ISSUER } from '../src/daemon/issuers.js';
import { demoHaproxyConfig } from '../src/haproxy/assets/config.js';
import { ManagedHaproxy } from '../src/haproxy/managed/managed-haproxy.js';
import { LocalCaIssuer } from '../src/issuers/local-ca/index.js';
import { runCli } from './helpers/cli.js';
import { eventually, freePort } from './helpers/stack.js';
import { handshake } from './helpers/tls.js';
import { tempDir } from './helpers/temp-dir.js';

const run = promisify(execFile);
/** The version matrix sets this to HAProxy 3.x binaries; Debian's 2.6 otherwise. */
const HAPROXY = process.env.CERTD_HAPROXY_BIN || '/usr/sbin/haproxy';
/** The haproxy package's own file: the config an operator on Debian pastes into. */
const STOCK = '/etc/haproxy/haproxy.cfg';
const NOISE = /\[(WARNING|ALERT)\]|Warnings were found/;

/**
 * Debian's stock haproxy.cfg in `dir`, changed only where a test must: its runtime socket moves
 * into the temp dir, chroot/user/group go (the test's HAProxy stays in the temp dir, and may run
 * unprivileged), and it logs to stderr (CI has no syslog at /dev/log: each request would ALERT).
 * `defaults` (option httplog, errorfiles) stays as shipped.
 */
async function stockConfig(dir: string): Promise<{ file: string; adminSocket: string }> {
  const adminSocket = join(dir, 'admin.sock');
  const text = (await readFile(STOCK, 'utf8'))
    .replace('/run/haproxy/admin.sock', adminSocket)
    .replace(/^\s*(chroot|user|group)\s.*\n/gm, '')
    .replace(/\blog\s+\/dev\/log\b/g, 'log stderr');
  assert.ok(text.includes(`stats socket ${adminSocket}`), `${STOCK} no longer has Debian's stats socket line`);
  const file = join(dir, 'haproxy.cfg');
  await writeFile(file, text);
  return { file, adminSocket };
}

/** `haproxy -c`: must pass and say nothing but that the file is valid. */
async function checkQuietly(file: string): Promise<void> {
  const r = await run(HAPROXY, ['-c', '-f', file], { timeout: 30_000 }).catch((err: { stdout: string; stderr: string }) => {
    assert.fail(`haproxy -c failed:\n${err.stdout}${err.stderr}`);
  });
  assert.doesNotMatch(r.stdout + r.stderr, NOISE, `haproxy -c warned:\n${r.stdout}${r.stderr}`);
}

/** A real start (master-worker, as systemd runs it) that printed no warning. */
async function startQuietly(dir: string, file: string, adminSocket: string): Promise<ManagedHaproxy> {
  const haproxy = new ManagedHaproxy({ binary: HAPROXY, configFile: file, masterSocket: join(dir, 'master.sock'), runtimeSocket: adminSocket });
  await haproxy.start();
  const noisy = haproxy.output().filter((l) => NOISE.test(l));
  assert.deepEqual(noisy, [], `HAProxy warned at start:\n${haproxy.output().join('\n')}`);
  return haproxy;
}

function httpGet(port: number, path: string): Promise<{ status: number; location?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, timeout: 10_000 }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, location: res.headers.location });
    });
    req.once('timeout', () => req.destroy(new Error(`GET ${path} on :${port} timed out`)));
    req.once('error', reject);
    req.end();
  });
}

describe('haproxy-config --merge into Debian\'s stock haproxy.cfg', () => {
  let dir: string;
  const cleanups: (() => Promise<unknown>)[] = [];
  before(async () => {
    dir = tempDir('certd-paste-');
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  test('on-demand + HTTP-01: only what the stock file lacks, haproxy -c and a start with no warning, then served through it', async () => {
    const sub = await mkdtemp(join(dir, 'ondemand-'));
    const { file, adminSocket } = await stockConfig(sub);
    const [tlsPort, httpPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const configFile = join(sub, 'certd.yaml');
    await writeFile(
      configFile,
      `dataDir: ./data
haproxy: { instances: [ { runtime: "unix:${adminSocket}" } ], certDir: ./certs }
issuers:
  internal: { type: local-ca }
  le: { type: acme, directory: "https://127.0.0.1:1/directory", challenge: http-01 }   # never asked here
onDemand: { issuer: internal, allow: ["*.paste.test"], maxCertificates: 10, maxWait: 5s }
api: { listen: "127.0.0.1:${apiPort}" }
`,
    );
    const r = await runCli(['--config', configFile, 'haproxy-config', '--merge', file, '--bind', `127.0.0.1:${tlsPort}`, '--http-bind', `127.0.0.1:${httpPort}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /stats socket/, 'the stock file already has the admin socket');
    assert.equal(r.stdout.match(/^global$/gm)?.length, 1, 'one global section, for the lua-load the stock file lacks');
    // 3.1+ wants the Lua boolean conversion chosen before any lua-load; 2.6/3.0 skip that line.
    assert.match(r.stdout, /^global\n\.if version_atleast\(3\.1\)\n    tune\.lua\.bool-sample-conversion normal\n\.endif\n    lua-load \S+certd-ondemand\.lua\n\n/m);
    assert.match(r.stdout, /frontend certd_sni\n    mode tcp\n    option tcplog\n    bind 127\.0\.0\.1:\d+\n/);
    assert.match(r.stdout, new RegExp(`bind 127\\.0\\.0\\.1:${httpPort}\\n`));
    assert.doesNotMatch(r.stdout, /default_backend (?!certd_tls_loop)/, 'no backend that does not exist');
    await appendFile(file, `\n${r.stdout}`);

    await checkQuietly(file);
    const haproxy = await startQuietly(sub, file, adminSocket);
    cleanups.push(() => haproxy.stop());
    // Before any daemon ran: the default certificate haproxy-config wrote is what HAProxy serves.
    const before = await handshake(tlsPort, 'nobody.example', { timeoutMs: 15_000 });
    assert.equal(before.subject, 'haproxy-certd default certificate');
    assert.deepEqual(await httpGet(httpPort, '/.well-known/acme-challenge/unknown-token'), { status: 404, location: undefined });
    assert.equal((await httpGet(httpPort, '/shop')).status, 301);

    const daemon = await Daemon.start(await loadConfig(configFile), { log: silentLogger });
    cleanups.push(() => daemon.stop());
    const ca = (await new LocalCaIssuer(daemon.store, { id: EMBEDDED_ISSUER }).ca()).rootPem;
    await eventually(async () => daemon.deployer.status()[0]?.state === 'up', 15_000, 'the daemon reaching the pasted stats socket');
    // The handshake above found no daemon: the Lua action stays quiet for 5 s after a failed call.
    await eventually(async () => (await handshake(tlsPort, 'first.paste.test', { ca, timeoutMs: 20_000 })).authorized, 30_000, 'first.paste.test issued at its handshake');
    assert.deepEqual((await handshake(tlsPort, 'first.paste.test', { ca })).san, ['first.paste.test']);
    assert.deepEqual(haproxy.output().filter((l) => NOISE.test(l)), []);
  });

  test('plain mode: --backend must exist, --bind is honoured, nothing global is repeated, a second merge adds nothing', async () => {
    const sub = await mkdtemp(join(dir, 'plain-'));
    const { file, adminSocket } = await stockConfig(sub);
    const tlsPort = await freePort();
    await appendFile(file, `\nbackend web\n    server app1 127.0.0.1:${await freePort()}\n`);
    const configFile = join(sub, 'certd.yaml');
    await writeFile(configFile, `dataDir: ./data\nhaproxy: { instances: [ { runtime: "unix:${adminSocket}" } ], certDir: ./certs }\napi: { listen: "127.0.0.1:1" }\n`);
    const cli = (...args: string[]) => runCli(['--config', configFile, 'haproxy-config', ...args]);

    const missing = await cli('--merge', file, '--backend', 'app');
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--backend app: \S+haproxy\.cfg has no such backend \(it has: web\)/);
    assert.doesNotMatch(missing.stderr, /\n\s+at /, 'no stack trace');

    const r = await cli('--merge', file, '--backend', 'web', '--bind', `127.0.0.1:${tlsPort}`);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /^global/m);
    assert.match(r.stdout, new RegExp(`frontend certd_https\\n    mode http\\n    bind 127\\.0\\.0\\.1:${tlsPort} ssl crt-list \\S+crt-list\\.txt`));
    assert.match(r.stdout, /default_backend web\n/);
    assert.match(r.stderr, /crt-list\.txt/, 'says which files it wrote');
    await appendFile(file, `\n${r.stdout}`);
    await checkQuietly(file);
    const haproxy = await startQuietly(sub, file, adminSocket);
    cleanups.push(() => haproxy.stop());
    assert.equal((await handshake(tlsPort, 'any.example', { timeoutMs: 15_000 })).subject, 'haproxy-certd default certificate');

    const again = await cli('--merge', file, '--backend', 'web');
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /nothing to add/);
    assert.doesNotMatch(again.stdout, /^(global|frontend|backend)/m);

    const whole = await cli('--bind', '10.0.0.1:443');
    assert.match(whole.stdout, new RegExp(`^global\\n(    #.*\\n)*    stats socket ${adminSocket} mode 660 level admin$`, 'm'));
    assert.match(whole.stdout, /bind 10\.0\.0\.1:443 ssl crt-list/);
    assert.match(whole.stdout, /http-request return status 503/, 'no --backend: a 503 saying so, not a backend that does not exist');

    for (const bad of [['--bind', ':443\n    bind :80'], ['--http-bind', 'a b'], ['--backend', 'x;y']]) {
      const refused = await cli(...bad);
      assert.equal(refused.code, 2, bad.join(' '));
      assert.match(refused.stderr, /CERTD_E_USAGE/);
    }
  });
});

for (const forge of [false, true]) test(`the demo's haproxy.cfg (on-demand${forge ? ' with the forge' : ''}, HTTP-01, TCP runtime) passes haproxy -c and starts with no warning`, async () => {
  const dir = tempDir('certd-democfg-');
  let haproxy: ManagedHaproxy | undefined;
  try {
    const config = configFromObject(
      { dataDir: './data', haproxy: { certDir: './certs' }, issuers: { [EMBEDDED_ISSUER]: { type: 'local-ca' } }, onDemand: { issuer: EMBEDDED_ISSUER, allow: ['*.demo.localhost'], maxCertificates: 10, forge }, api: { listen: '127.0.0.1:1' } },
      dir,
    );
    await writeInitialHaproxyFiles(config, silentLogger);
    const adminSocket = join(dir, 'admin.sock');
    const [tlsPort, httpPort, tcpPort] = [await freePort(), await freePort(), await freePort()];
    const file = join(dir, 'haproxy.cfg');
    await writeFile(
      file,
      demoHaproxyConfig({
        adminSocket,
        crtList: config.haproxy.crtList,
        bind: `127.0.0.1:${tlsPort}`,
        onDemand: onDemandSnippetOptions(config, 'test-token', `127.0.0.1:${tlsPort}`),
        runtimeTcp: `127.0.0.1:${tcpPort}`,
        acmeHttp: { bind: `127.0.0.1:${httpPort}`, acmeMap: join(config.haproxy.certDir, 'acme.map') },
      }),
    );
    await checkQuietly(file);
    haproxy = await startQuietly(dir, file, adminSocket);
  } finally {
    await haproxy?.stop();
  }
});
