import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from './helpers/ports.js';
import { handshake } from './helpers/tls.js';
import { stopChild } from './helpers/children.js';
import { tempDir } from './helpers/temp-dir.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('..', import.meta.url));
/** npm against a warm cache is seconds; a cold one on a loaded 2-core machine is much slower. */
const NPM_TIMEOUT_MS = 180_000;

/** Resolves with the child's exit code, or rejects after `ms` saying what it waited for. */
function exitOf(child: ChildProcess, ms: number, what: string): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no exit within ${ms} ms`)), ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(true));
  });
}

/**
 * What an operator does: clone, `npm pack` (prepack builds), `npm install -g` the tarball, then use
 * the installed command from a directory that is not the repo. It tests the committed HEAD, as CI's
 * clean clone does: uncommitted changes are not in the clone.
 */
describe('package: npm pack from a clean clone, npm install -g, run from outside the repo', () => {
  let tmp: string;
  let tarball: string;
  let packed: string[];
  let bin: string;
  let outside: string;
  let version: string;
  let installed: string;
  let demo: ChildProcess | undefined;

  before(async () => {
    tmp = tempDir('certd-pack-');
    const clone = join(tmp, 'clone');
    await run('git', ['clone', '--quiet', REPO, clone], { timeout: 60_000 });
    version = (JSON.parse(await readFile(join(clone, 'package.json'), 'utf8')) as { version: string }).version;
    const npm = (args: string[], cwd: string) => run('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd, timeout: NPM_TIMEOUT_MS });
    await npm(['ci'], clone);
    const { stdout } = await npm(['pack', '--json', '--pack-destination', tmp], clone);
    const [info] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    tarball = join(tmp, info!.filename);
    packed = info!.files.map((f) => f.path);
    const prefix = join(tmp, 'prefix');
    await npm(['install', '--global', '--prefix', prefix, tarball], tmp);
    bin = join(prefix, 'bin', 'haproxy-certd');
    installed = join(prefix, 'lib', 'node_modules', 'haproxy-certd');
    outside = join(tmp, 'elsewhere');
    await mkdir(join(outside, 'node_modules'), { recursive: true });
    // So `import('haproxy-certd')` below resolves through the installed package's exports map.
    await symlink(installed, join(outside, 'node_modules', 'haproxy-certd'));
  });

  after(async () => {
    if (demo) await stopChild(demo, 'SIGINT', 20_000);
  });

  test('the tarball holds the build, the licence and the readme, not sources or tests', () => {
    for (const f of ['dist/cli/main.js', 'dist/index.js', 'dist/index.d.ts', 'contrib/systemd/haproxy-certd.service', 'contrib/prometheus/alerts.yml', 'LICENSE', 'README.md', 'package.json']) {
      assert.ok(packed.includes(f), `${f} missing from ${tarball}`);
    }
    assert.deepEqual(packed.filter((f) => !/^(dist|contrib)\//.test(f) && !['LICENSE', 'README.md', 'package.json'].includes(f)), []);
    assert.deepEqual(packed.filter((f) => f.endsWith('.map') || f.includes('.test.')), []);
  });

  test('haproxy-certd --version prints the package version', async () => {
    const { stdout } = await run(bin, ['--version'], { cwd: outside, timeout: 30_000 });
    assert.equal(stdout.trim(), version);
  });

  test('the library entry point exports the config loader, the daemon and the errors', async () => {
    const script = `const m = await import('haproxy-certd');
console.log(JSON.stringify({ loadConfig: typeof m.loadConfig, Daemon: typeof m.Daemon, CertdError: typeof m.CertdError, ConfigError: typeof m.ConfigError, VERSION: m.VERSION }));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: outside, timeout: 30_000 });
    assert.deepEqual(JSON.parse(stdout), { loadConfig: 'function', Daemon: 'function', CertdError: 'function', ConfigError: 'function', VERSION: version });
  });

  /**
   * systemd-analyze verify checks that every command a unit runs exists, and /usr/bin/haproxy-certd
   * does not here: the shipped units are verified as copies naming the binary just installed. The
   * drop-in is verified appended to Debian's haproxy.service (same sections, same merge).
   */
  test('the shipped systemd unit and haproxy.service drop-in pass systemd-analyze verify; the unit is hardened', async () => {
    const units = join(tmp, 'units');
    await mkdir(units);
    const shipped = join(installed, 'contrib', 'systemd');
    const rebin = (text: string) => {
      assert.match(text, /=\/usr\/bin\/haproxy-certd /, 'the unit names the packaged path');
      return text.replaceAll('/usr/bin/haproxy-certd ', `${bin} `);
    };
    const unit = await readFile(join(shipped, 'haproxy-certd.service'), 'utf8');
    for (const key of ['User=haproxy-certd', 'StateDirectory=haproxy-certd', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ExecReload=/bin/kill -HUP $MAINPID']) assert.ok(unit.includes(key), key);
    await writeFile(join(units, 'haproxy-certd.service'), rebin(unit));
    const dropIn = await readFile(join(shipped, 'haproxy.service.d', 'haproxy-certd.conf'), 'utf8');
    assert.match(dropIn, /ExecStartPre=\S+ wait --crt-list /);
    await writeFile(join(units, 'haproxy.service'), `${await readFile('/lib/systemd/system/haproxy.service', 'utf8')}\n${rebin(dropIn)}`);
    const verified = await run('systemd-analyze', ['verify', 'haproxy-certd.service', 'haproxy.service'], { cwd: units, timeout: 60_000 });
    assert.equal(verified.stderr + verified.stdout, '', 'systemd-analyze verify said something');
    // Non-zero above the threshold, in tenths: the unit measures 1.5 ("OK") on Debian 12, 2.0 is allowed.
    await run('systemd-analyze', ['security', '--offline=yes', '--threshold=20', join(units, 'haproxy-certd.service')], { timeout: 60_000 });
  });

  test('the installed demo serves a verified handshake, then stops cleanly on SIGINT', async () => {
    const [port, apiPort] = [await freePort(), await freePort()];
    const dir = join(outside, 'demo');
    demo = spawn(bin, ['demo', '--port', String(port), '--api-port', String(apiPort), '--dir', dir], { cwd: outside, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    demo.stdout!.on('data', (d) => (stdout += d));
    demo.stderr!.on('data', (d) => (stderr += d));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`demo did not say it was running within 60 s; stderr:\n${stderr}`)), 60_000);
      const look = () => {
        if (stdout.includes('Ctrl-C stops')) (clearTimeout(timer), resolve());
      };
      demo!.stdout!.on('data', look);
      demo!.once('exit', (code) => (clearTimeout(timer), reject(new Error(`demo exited with ${code}; stderr:\n${stderr}`))));
    });
    assert.match(stdout, /haproxy-certd --config demo\/certd\.yaml issue shop\.demo\.localhost/, 'the how-to names the installed command');
    const served = await handshake(port, 'app.demo.localhost', { ca: await readFile(join(dir, 'ca.pem'), 'utf8'), timeoutMs: 10_000 });
    assert.ok(served.authorized, served.authorizationError);
    assert.deepEqual(served.san, ['app.demo.localhost']);

    demo.kill('SIGINT');
    assert.equal(await exitOf(demo, 30_000, 'demo stop after SIGINT'), 0, stderr);
    assert.match(stderr, /stopping HAProxy and the daemon/);
    assert.ok(await refused(port), 'HAProxy still listens after the demo stopped');
    assert.ok(await refused(apiPort), 'the daemon API still listens after the demo stopped');
  });
});
