import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { silentLogger } from '../src/core/log.js';
import { writeInitialHaproxyFiles } from '../src/daemon/initial-files.js';
import { readToken } from '../src/daemon/token.js';
import { demoHaproxyConfig } from '../src/haproxy/assets/config.js';
import { ManagedHaproxy } from '../src/haproxy/managed/managed-haproxy.js';
import type { CertView } from '../src/service/cert-service.js';
import { DaemonClient } from '../src/cli/daemon-client.js';
import { killedAtExit } from './helpers/children.js';
import { runCli, spawnCli } from './helpers/cli.js';
import { eventually, freePort, startOnFreePort } from './helpers/stack.js';
import { handshake } from './helpers/tls.js';

const GOOD = Array.from({ length: 29 }, (_, i) => `r${String(i + 1).padStart(2, '0')}.renew.test`);
const FAILING = 'fail.renew.test';

/**
 * A real `haproxy-certd run` and a real HAProxy, 30 certificates; the one from issuer "other" cannot
 * be renewed once "other" becomes an ACME CA nobody listens for (a config reload, as an operator
 * switching CAs would do).
 */
describe('renew --all goes on past a failure, with progress and a summary', () => {
  let dir: string;
  let configFile: string;
  let apiPort: number;
  let tlsPort: number;
  let haproxy: ManagedHaproxy;
  let child: ReturnType<typeof spawnCli>;
  let api: DaemonClient;
  let log = '';
  const cli = (...args: string[]) => runCli(['--config', configFile, ...args], { timeoutMs: 180_000 });
  const yaml = (other: string) => `dataDir: ./data
haproxy:
  instances: [{ runtime: "unix:./admin.sock", name: h1 }]
  certDir: ./certs
issuers: { internal: { type: local-ca }, other: ${other} }
api: { listen: "127.0.0.1:${apiPort}" }
`;
  const serials = async () => new Map((await api.call<{ certs: CertView[] }>('GET', '/certs')).certs.map((c) => [c.id, c.serial]));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'certd-cli-renew-'));
    configFile = join(dir, 'certd.yaml');
    apiPort = await freePort();
    await writeFile(configFile, yaml('{ type: local-ca }'));
    const config = await loadConfig(configFile);
    await writeInitialHaproxyFiles(config, silentLogger);
    const socket = join(dir, 'admin.sock');
    const cfg = join(dir, 'haproxy.cfg');
    haproxy = new ManagedHaproxy({ configFile: cfg, masterSocket: join(dir, 'master.sock'), runtimeSocket: socket });
    tlsPort = await startOnFreePort(haproxy, (p) => writeFile(cfg, demoHaproxyConfig({ adminSocket: socket, crtList: config.haproxy.crtList, bind: `127.0.0.1:${p}` })));
    child = spawnCli(['--config', configFile, 'run']);
    child.stderr.on('data', (d) => (log += d));
    await eventually(async () => /daemon started/.test(log), 60_000, `daemon start (log: ${log})`);
    api = new DaemonClient(`http://127.0.0.1:${apiPort}`, (await readToken(config.dataDir)) ?? '');
    for (const name of GOOD) await api.call('POST', '/certs', { names: [name] });
    await api.call('POST', '/certs', { names: [FAILING], issuer: 'other' });
    // Connections to this port are refused: every ACME request of "other" fails at once.
    await writeFile(configFile, yaml(`{ type: acme, directory: "http://127.0.0.1:${await freePort()}/directory" }`));
    const before = log.length;
    child.kill('SIGHUP');
    await eventually(async () => /"msg":"config reloaded"/.test(log.slice(before)), 60_000, `reload (log: ${log.slice(before)})`);
  });

  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    await haproxy?.stop().catch(() => haproxy.kill());
    await rm(dir, { recursive: true, force: true });
  });

  test('not a terminal: a plain line per certificate in order, the failure named, a summary, exit 1, the others renewed', async () => {
    const was = await serials();
    const r = await cli('renew', '--all');
    assert.equal(r.code, 1, r.stderr);
    const steps = r.stdout.split('\n').filter((l) => /^\d+\/30 /.test(l));
    assert.deepEqual(
      steps.map((l) => Number(l.split('/')[0])),
      Array.from({ length: 30 }, (_, i) => i + 1),
      'one progress line per certificate, counting up',
    );
    assert.equal(steps.filter((l) => /: issued, valid until .*served by 1\/1 instance/.test(l)).length, 29);
    assert.match(r.stdout, new RegExp(`^\\d+/30 ${FAILING.replace(/\./g, '\\.')}: FAILED: .+ \\[CERTD_E_[A-Z_]+\\]$`, 'm'));
    assert.match(r.stdout, /^renewed 29 of 30 certificate\(s\), 0 unchanged, 1 failed \(fail\.renew\.test\), in \d+\.\ds; 0 not yet served by every instance$/m);
    assert.match(r.stderr, /^error: 1 of 30 certificate\(s\) failed to renew: fail\.renew\.test \[CERTD_E_[A-Z_]+\]$/m);
    const now = await serials();
    for (const name of GOOD) assert.notEqual(now.get(name), was.get(name), `${name} renewed after the failure too`);
    assert.equal(now.get(FAILING), was.get(FAILING), 'the failed one keeps its certificate');
    const last = GOOD.at(-1)!;
    assert.equal((await handshake(tlsPort, last, { timeoutMs: 5_000 })).serial, now.get(last), 'HAProxy serves the renewed certificate');
  });

  test('on a terminal: one counter line redrawn in place, the failure kept above it, then the summary', async () => {
    // script(1) (bsdutils, always in Debian) gives the CLI a pseudo-terminal as stdout.
    const cmd = [process.execPath, '--import', import.meta.resolve('tsx'), fileURLToPath(new URL('../src/cli/main.ts', import.meta.url)), '--config', configFile, 'renew', '--all'];
    const r = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const child = killedAtExit(spawn('script', ['-qec', cmd.map((w) => `'${w}'`).join(' '), '/dev/null'], { env: { ...process.env, CERTD_LOG_LEVEL: 'warn', COLUMNS: '100' }, stdio: ['ignore', 'pipe', 'pipe'] }));
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
      child.once('error', reject);
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code, out });
      });
    });
    assert.equal(r.code, 1, r.out);
    const counters = [...r.out.matchAll(/\r\x1b\[K(\d+)\/30 \S+: (renewed|failed)/g)].map((m) => Number(m[1]));
    assert.deepEqual(counters, Array.from({ length: 30 }, (_, i) => i + 1), 'the counter, redrawn after a clear, once per certificate');
    assert.match(r.out, /(^|\r\x1b\[K)fail\.renew\.test: FAILED: .+ \[CERTD_E_[A-Z_]+\]\r?\n/, 'the failure stays, on its own line');
    assert.doesNotMatch(r.out, /valid until/, 'no line per certificate on a terminal');
    assert.match(r.out, /\r\x1b\[Krenewed 29 of 30 certificate\(s\), 0 unchanged, 1 failed \(fail\.renew\.test\)/, 'the counter is cleared before the summary');
  });

  test('--json: one document on stdout with results, failed and summary; progress lines on stderr', async () => {
    const r = await cli('renew', '--all', '--json');
    assert.equal(r.code, 1, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.equal(doc.via, 'daemon');
    assert.equal(doc.results.length, 29);
    assert.deepEqual(doc.failed.map((f: { id: string }) => f.id), [FAILING]);
    assert.match(doc.failed[0].error.code, /^CERTD_E_/);
    const { ms, ...counts } = doc.summary;
    assert.deepEqual(counts, { total: 30, issued: 29, unchanged: 0, failed: [FAILING], pending: 0 });
    assert.ok(ms >= 0);
    assert.equal(r.stderr.split('\n').filter((l) => /^\d+\/30 /.test(l)).length, 30, r.stderr);
  });

  test('the API: NDJSON lines as they happen with Accept: application/x-ndjson, one JSON answer otherwise', async () => {
    const token = (await readToken(join(dir, 'data'))) ?? '';
    const post = (body: unknown, accept?: string) =>
      fetch(`http://127.0.0.1:${apiPort}/v1/renew`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(accept ? { accept } : {}) },
        body: JSON.stringify(body),
      });
    const streamed = await post({ all: true }, 'application/x-ndjson');
    assert.equal(streamed.status, 200);
    assert.equal(streamed.headers.get('content-type'), 'application/x-ndjson');
    // Lines come as each certificate finishes: the first chunk read is not the whole answer.
    const reader = streamed.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      if (text === '') assert.doesNotMatch(chunk.value, /"type":"summary"/, 'the first chunk holds no summary');
      text += chunk.value;
    }
    const lines = text.trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines[0], { type: 'start', total: 30 });
    assert.deepEqual(lines.slice(1, -1).map((l) => l.done), Array.from({ length: 30 }, (_, i) => i + 1));
    assert.equal(lines.filter((l) => l.type === 'result').length, 29);
    assert.deepEqual(lines.filter((l) => l.type === 'failure').map((l) => [l.id, l.status >= 400]), [[FAILING, true]]);
    assert.equal(lines.at(-1).type, 'summary');
    assert.deepEqual(lines.at(-1).failed, [FAILING]);

    const whole = await post({ names: [GOOD[0], FAILING] });
    const doc = (await whole.json()) as { error: { message: string }; failed: { status: number }[]; results: unknown[]; summary: { issued: number } };
    assert.equal(whole.status, doc.failed[0].status, 'the first failure decides the status');
    assert.ok(whole.status >= 500, `status ${whole.status}`);
    assert.match(doc.error.message, /^1 of 2 certificate\(s\) failed to renew: fail\.renew\.test \(/);
    assert.deepEqual([doc.results.length, doc.summary.issued], [1, 1]);
    const ok = await post({ names: [GOOD[0]] });
    assert.equal(ok.status, 200);
    assert.deepEqual(((await ok.json()) as { failed: unknown[] }).failed, []);

    const unknown = await post({ names: ['nope.renew.test'] }, 'application/x-ndjson');
    assert.equal(unknown.status, 404, 'a name that does not exist is answered before any stream');
    assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, 'CERTD_E_NOT_FOUND');
  });
});
