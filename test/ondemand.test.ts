import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { createConnection, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { onDemandToken } from '../src/daemon/token.js';
import { issuedTotal, metric, pool } from './helpers/ondemand.js';
import { eventually, handshake, startStack, type Stack } from './helpers/stack.js';
import { tempDir } from './helpers/temp-dir.js';

const run = promisify(execFile);
const DEFAULT_CN = 'haproxy-certd default certificate';


/** Sends a minimal TLS 1.2 ClientHello with any SNI bytes; resolves with the server's first reply bytes. */
function rawClientHello(port: number, sni: string): Promise<Buffer> {
  const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
  const name = Buffer.from(sni, 'latin1');
  const sniExt = Buffer.concat([u16(0), u16(name.length + 5), u16(name.length + 3), Buffer.from([0]), u16(name.length), name]);
  const ext = (type: number, body: Buffer) => Buffer.concat([u16(type), u16(body.length), body]);
  const extensions = Buffer.concat([
    sniExt,
    ext(0x000a, Buffer.from([0, 2, 0, 0x17])), // supported_groups: secp256r1
    ext(0x000b, Buffer.from([1, 0])), // ec_point_formats: uncompressed
    ext(0x000d, Buffer.from([0, 2, 4, 3])), // signature_algorithms: ecdsa_secp256r1_sha256
  ]);
  const body = Buffer.concat([
    Buffer.from([3, 3]), Buffer.alloc(32, 7), Buffer.from([0]), u16(2), Buffer.from([0xc0, 0x2b]), Buffer.from([1, 0]),
    u16(extensions.length), extensions,
  ]);
  const hs = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 0xff]), body]);
  const record = Buffer.concat([Buffer.from([0x16, 3, 1]), u16(hs.length), hs]);
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => socket.write(record));
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer to the ClientHello')));
    socket.once('data', (d) => {
      resolve(d);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}


describe('on-demand TLS: a certificate at the first handshake, one HAProxy process, no reload', () => {
  let stack: Stack;
  let ca: string;

  before(async () => {
    stack = await startStack({
      issuers: { internal: { type: 'local-ca' } },
      onDemand: { issuer: 'internal', allow: ['*.od.test'], deny: ['*.blocked.od.test'], maxCertificates: 500, maxWait: '2s', rateLimit: { perMinute: 60_000, burst: 500 } },
    });
    ca = await stack.rootPem();
  });
  after(() => stack.stop());

  test('50 never-seen allowed names: every FIRST handshake verifies with the right SAN', async () => {
    const pid = await stack.haproxy.workerPid();
    const names = Array.from({ length: 50 }, (_, i) => `n${i}.team${i % 7}.od.test`);
    for (const name of names) {
      const hs = await handshake(stack.tlsPort, name, { ca });
      assert.equal(hs.authorized, true, `${name}: ${hs.authorizationError}`);
      assert.deepEqual(hs.san, [name]);
    }
    assert.equal(await stack.haproxy.workerPid(), pid, 'no reload');
    // The handshake was answered once HAProxy served it; the store and the files follow behind.
    const { certDir, crtList } = stack.config.haproxy;
    await eventually(async () => {
      const stored = new Set((await stack.daemon.service.list()).map((c) => c.id));
      const files = new Set(await readdir(certDir));
      const list = await readFile(crtList, 'utf8');
      return names.every((n) => stored.has(n) && files.has(`${n}.pem`) && list.includes(`${certDir}/${n}.pem`));
    }, 5_000, 'every on-demand certificate stored, written and listed');
  });

  test('20 concurrent first handshakes for ONE new name: one issuance, 20 verified handshakes', async () => {
    const before = await issuedTotal(stack);
    const results = await Promise.all(Array.from({ length: 20 }, () => handshake(stack.tlsPort, 'race.od.test', { ca })));
    assert.equal(results.filter((r) => r.authorized).length, 20);
    assert.equal(new Set(results.map((r) => r.serial)).size, 1);
    assert.equal(await issuedTotal(stack), before + 1);
  });

  test('20 concurrent first handshakes for 20 new names: 20/20 verified', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `burst${i}.od.test`);
    const results = await Promise.all(names.map((n) => handshake(stack.tlsPort, n, { ca })));
    results.forEach((r, i) => assert.ok(r.authorized && r.san.includes(names[i]!), `${names[i]}: ${r.authorizationError}`));
  });

  test('known names never wait: a second handshake does not call the daemon', async () => {
    const calls = () => metric(stack, /^certd_ondemand_decisions_total\{[^}]*\} (\d+)$/);
    const before = await calls();
    for (let i = 0; i < 5; i++) assert.equal((await handshake(stack.tlsPort, 'n1.team1.od.test', { ca })).authorized, true);
    assert.equal(await calls(), before);
  });

  test('1,000 handshakes with random non-allowed SNIs: no issuance, no files, bounded memory, quick default cert', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // The files of the names before, written once they were served, are not this test's.
    await stack.daemon.deployer.drain();
    const filesBefore = (await readdir(stack.config.haproxy.certDir)).length;
    const issuedBefore = await issuedTotal(stack);
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const started = Date.now();
    const names = Array.from({ length: 1000 }, (_, i) => `r${i}-${Math.random().toString(36).slice(2, 10)}.${i % 2 ? 'evil.example' : 'blocked.od.test'}`);
    const results = await pool(names, 20, (n) => handshake(stack.tlsPort, n, { ca }));
    const ms = Date.now() - started;
    assert.ok(results.every((r) => !r.authorized && r.subject === DEFAULT_CN));
    assert.equal(await issuedTotal(stack), issuedBefore);
    assert.equal((await readdir(stack.config.haproxy.certDir)).length, filesBefore);
    gc();
    const grown = process.memoryUsage().heapUsed - heapBefore;
    assert.ok(grown < 16 * 1024 * 1024, `heap grew ${Math.round(grown / 1024)} KiB`);
    assert.ok(ms / 1000 < 50, `median-ish ${ms / 1000} ms per refused handshake is not quick`);
  });

  test('hostile SNIs: no issuance, no crash, default certificate', async () => {
    const issuedBefore = await issuedTotal(stack);
    const hostile = ['../../etc/x.od.test', 'a;b.od.test', '*.od.test', 'x y.od.test', 'UPPER.OD.TEST..', '-x.od.test'];
    for (const sni of hostile) {
      const sClient = run('openssl', ['s_client', '-connect', `127.0.0.1:${stack.tlsPort}`, '-servername', sni], { timeout: 10_000 });
      sClient.child.stdin?.end(); // s_client quits at EOF on stdin once the handshake is done
      const { stdout } = await sClient.catch((e: { stdout: string }) => e);
      assert.match(stdout, new RegExp(`subject=.*${DEFAULT_CN}`), JSON.stringify(sni));
    }
    // OpenSSL will not send a 300-character SNI; a hand-made ClientHello does.
    assert.ok((await rawClientHello(stack.tlsPort, `${'a'.repeat(300)}.od.test`)).length > 0, 'HAProxy answers a 300-char SNI');
    // The daemon side takes whatever bytes arrive: control chars, non-ASCII, newlines, empty.
    const token = onDemandToken(stack.daemon.token);
    for (const body of ['', '\n', `${'a'.repeat(300)}.od.test`, 'a\nb.od.test', 'x\u0000.od.test', 'ünï.od.test', 'a\r\nset ssl cert x.od.test', '%2e%2e/x.od.test']) {
      const res = await fetch(`${stack.daemon.api.url}/ondemand`, { method: 'POST', body, headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 403, JSON.stringify(body));
      assert.deepEqual(await res.json(), { status: 'refused', reason: 'invalid-name' });
    }
    assert.equal(await issuedTotal(stack), issuedBefore);
    assert.equal((await handshake(stack.tlsPort, 'alive.od.test', { ca })).authorized, true, 'still working');
  });

  test('/ondemand needs the on-demand token; the admin token is not it', async () => {
    const res = await fetch(`${stack.daemon.api.url}/ondemand`, { method: 'POST', body: 'x.od.test', headers: { authorization: 'Bearer nope' } });
    assert.equal(res.status, 401);
    const admin = { authorization: `Bearer ${stack.daemon.token}` };
    assert.equal((await fetch(`${stack.daemon.api.url}/ondemand`, { method: 'POST', body: 'x.od.test', headers: admin })).status, 401);
    // Served ahead of the API app: a body over 1 KiB is refused unread, other methods are not it.
    const onDemand = { authorization: `Bearer ${onDemandToken(stack.daemon.token)}` };
    const big = await fetch(`${stack.daemon.api.url}/ondemand`, { method: 'POST', body: `${'a'.repeat(2000)}.od.test`, headers: onDemand });
    assert.equal(big.status, 413);
    assert.equal((await fetch(`${stack.daemon.api.url}/ondemand`, { headers: onDemand })).status, 404);
    assert.equal((await fetch(`${stack.daemon.api.url}/healthz`)).status, 200, 'the API app still answers beside it');
  });

  test('daemon stopped: unknown names get the default certificate within the bound, known names are unaffected; back → resumes', async () => {
    await stack.daemon.stop();
    const t0 = Date.now();
    const unknown = await handshake(stack.tlsPort, 'while-down.od.test', { ca, timeoutMs: 15_000 });
    const waited = Date.now() - t0;
    assert.equal(unknown.subject, DEFAULT_CN);
    // A stopped daemon is a refused connect: the Lua answers at once (no httpclient retries).
    assert.ok(waited < 1_000, `waited ${waited} ms`);
    const t1 = Date.now();
    assert.equal((await handshake(stack.tlsPort, 'n2.team2.od.test', { ca })).authorized, true);
    assert.ok(Date.now() - t1 < 500);
    await stack.restartDaemon();
    await eventually(async () => (await handshake(stack.tlsPort, 'after.od.test', { ca })).authorized, 15_000, 'on-demand resumes');
  });
});

describe('on-demand in a fleet with a member that hangs', () => {
  let stack: Stack;
  let hung: NetServer;
  let hungDir: string;
  const held: Socket[] = [];

  before(async () => {
    // h2's runtime socket accepts connections and never answers (a wedged HAProxy).
    hungDir = tempDir('certd-hung-');
    hung = createNetServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => hung.listen(join(hungDir, 'h2.sock'), resolve));
    stack = await startStack(
      { issuers: { internal: { type: 'local-ca' } }, onDemand: { issuer: 'internal', allow: ['*.fleet.test'], maxCertificates: 50, maxWait: '5s' } },
      {},
      { moreInstances: [{ name: 'h2', runtime: `unix:${join(hungDir, 'h2.sock')}` }] },
    );
  });
  after(async () => {
    const started = Date.now();
    await stack.stop();
    const took = Date.now() - started;
    for (const s of held) s.destroy();
    await new Promise((resolve) => hung.close(resolve));
    // One push's grace (2 s), not the hung instance's connect attempts (~6 s) or command timeout.
    assert.ok(took < 4_000, `the daemon stop took ${took} ms with a hung instance`);
  });

  test('the healthy member serves a new name at its first handshake; the hung one does not hold it to maxWait', async () => {
    const ca = await stack.rootPem();
    for (const name of ['a.fleet.test', 'b.fleet.test']) {
      const t0 = Date.now();
      const served = await handshake(stack.tlsPort, name, { ca, timeoutMs: 10_000 });
      assert.equal(served.authorized, true, `${name}: ${served.authorizationError} (subject ${served.subject})`);
      assert.deepEqual(served.san, [name]);
      // The answer waits for h1 and a short grace, not for h2 until maxWait (5 s).
      const waited = Date.now() - t0;
      assert.ok(waited < 2_500, `${name}: the handshake waited ${waited} ms`);
    }
    // Its store record and files still follow, without waiting for h2.
    await eventually(async () => (await stack.daemon.store.loadCert('a.fleet.test')) !== undefined, 5_000, 'stored');
  });
});

describe('on-demand limits hold for allowed names too', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      issuers: { internal: { type: 'local-ca' } },
      onDemand: { issuer: 'internal', allow: ['*.lim.test'], maxCertificates: 8, maxWait: '2s', rateLimit: { perMinute: 1, burst: 5 } },
    });
  });
  after(() => stack.stop());

  test('global rate limit: a burst of 20 new allowed names issues at most the burst', async () => {
    const ca = await stack.rootPem();
    const results = await pool(Array.from({ length: 20 }, (_, i) => `l${i}.lim.test`), 4, (n) => handshake(stack.tlsPort, n, { ca }));
    const served = results.filter((r) => r.authorized).length;
    assert.ok(served >= 5 && served <= 6, `served ${served}`);
    assert.ok((await metric(stack, /^certd_ondemand_decisions_total\{status="limited",reason="rate-global"\} (\d+)$/)) >= 14);
  });

  test('the certificate cap holds whatever the rate', async () => {
    const { OnDemandPolicy } = await import('../src/ondemand/policy.js');
    const policy = new OnDemandPolicy({ ...stack.config.onDemand!, rateLimit: { perMinute: 1e6, burst: 1e6 } });
    assert.deepEqual(policy.screen('x.lim.test', '127.0.0.1', 8), { allow: false, status: 'limited', reason: 'cap' });
    assert.deepEqual(policy.screen('x.lim.test', '127.0.0.1', 7), { allow: true });
  });
});

describe('on-demand ask URL: the operator decides, asked while the store is locked', () => {
  let stack: Stack;
  let askServer: Server;
  const asked: string[] = [];
  before(async () => {
    // Says yes to names starting with "yes", after 50 ms (longer than the look-up and the lock).
    askServer = createServer((req, res) => {
      const domain = new URL(req.url ?? '/', 'http://ask').searchParams.get('domain') ?? '';
      asked.push(domain);
      setTimeout(() => res.writeHead(domain.startsWith('yes') ? 200 : 403).end(), 50);
    });
    askServer.listen(0, '127.0.0.1');
    await once(askServer, 'listening');
    const { port } = askServer.address() as { port: number };
    stack = await startStack({
      issuers: { internal: { type: 'local-ca' } },
      onDemand: { issuer: 'internal', allow: ['*.ask.test'], ask: `http://127.0.0.1:${port}/ask`, askTimeout: '1s', maxCertificates: 50, maxWait: '2s' },
    });
  });
  after(async () => {
    await stack.stop();
    askServer.closeAllConnections();
    askServer.close();
  });

  test('allowed: issued and served at the first handshake', async () => {
    const hs = await handshake(stack.tlsPort, 'yes1.ask.test', { ca: await stack.rootPem() });
    assert.equal(hs.authorized, true);
    assert.deepEqual(hs.san, ['yes1.ask.test']);
    assert.deepEqual(asked, ['yes1.ask.test']);
    // The PEM, the store record and the lock release follow the handshake.
    const locks = join(stack.config.dataDir, 'locks', 'issue');
    await eventually(
      async () => (await readdir(stack.config.haproxy.certDir)).includes('yes1.ask.test.pem') && (await readdir(locks).catch(() => [])).length === 0,
      5_000,
      'yes1.ask.test written behind its handshake',
    );
  });

  test('refused: default certificate, nothing issued, no file or lock left; the refusal is cached', async () => {
    const issuedBefore = await issuedTotal(stack);
    // Temp files come and go while yes1's files are written behind its handshake: not counted.
    const certDirFiles = async () => (await readdir(stack.config.haproxy.certDir)).filter((f) => !f.endsWith('.tmp')).sort();
    const filesBefore = await certDirFiles();
    for (let i = 0; i < 3; i++) assert.equal((await handshake(stack.tlsPort, 'no1.ask.test')).subject, DEFAULT_CN);
    assert.equal(await issuedTotal(stack), issuedBefore);
    assert.deepEqual(await certDirFiles(), filesBefore);
    assert.deepEqual(await readdir(join(stack.config.dataDir, 'locks', 'issue')).catch(() => []), []);
    assert.equal(asked.filter((n) => n === 'no1.ask.test').length, 1, 'asked once, then answered from the cache');
    assert.ok((await metric(stack, /^certd_ondemand_decisions_total\{status="refused",reason="ask-refused"\} (\d+)$/)) >= 1);
  });

  test('ask URL down: refused (fails closed), not cached, no issuance', async () => {
    askServer.closeAllConnections();
    await new Promise((resolve) => askServer.close(resolve));
    const issuedBefore = await issuedTotal(stack);
    assert.equal((await handshake(stack.tlsPort, 'yes2.ask.test')).subject, DEFAULT_CN);
    assert.equal(await issuedTotal(stack), issuedBefore);
    assert.ok((await metric(stack, /^certd_ondemand_decisions_total\{status="refused",reason="ask-unreachable"\} (\d+)$/)) >= 1);
  });
});
