import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { once } from 'node:events';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DaemonClient } from '../src/cli/daemon-client.js';
import { categoryOf, CertdError, errorKind, outcomeOf, StoreLockedError, type ErrorCategory } from '../src/core/errors.js';
import type { IssueResult } from '../src/service/cert-service.js';
import { selfSigned } from './helpers/certs.js';
import { killedAtExit } from './helpers/children.js';
import { startHaproxy, type TestHaproxy } from './helpers/haproxy.js';
import { eventually, freePort, handshake, startStack, type Stack } from './helpers/stack.js';
import { configFromObject } from '../src/config/load.js';
import { silentLogger } from '../src/core/log.js';
import { Daemon } from '../src/daemon/daemon.js';

const execFileAsync = promisify(execFile);

/** The built CLI (npm test builds it first): its start takes ~0.1 s where tsx takes a second or more. */
const BUILT_CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

/** A unix socket that only counts who connects: proof that a process never talked to "HAProxy". */
async function sentinelSocket(path: string): Promise<{ connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const server: Server = createNetServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { connections: () => connections, close: () => new Promise((r) => server.close(() => r())) };
}

function runBuilt(args: string[], timeoutMs = 30_000): Promise<{ code: number | null; stderr: string; ms: number }> {
  const started = Date.now();
  const child = killedAtExit(spawn(process.execPath, [BUILT_CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CERTD_LOG_LEVEL: 'warn' } }));
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return once(child, 'close').then(([code]) => {
    clearTimeout(timer);
    return { code: code as number | null, stderr, ms: Date.now() - started };
  });
}

describe('a fatal start stops everything: one daemon per store, no half-started writer', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'certd-fatal-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('a second `run` on the same dataDir exits 1 at once, naming the first, and never talks to HAProxy', async () => {
    const firstPort = await freePort();
    await writeFile(join(dir, 'first.yaml'), `dataDir: ./data\nhaproxy: { certDir: ./certs }\napi: { listen: "127.0.0.1:${firstPort}" }\n`);
    const first = killedAtExit(spawn(process.execPath, [BUILT_CLI, '--config', join(dir, 'first.yaml'), 'run'], { stdio: ['ignore', 'ignore', 'pipe'] }));
    let log = '';
    first.stderr.on('data', (d) => (log += d));
    try {
      await eventually(async () => /daemon started/.test(log), 60_000, `the first daemon's "daemon started" log line (log: ${log})`);
      const sentinel = await sentinelSocket(join(dir, 'haproxy.sock'));
      try {
        await writeFile(
          join(dir, 'second.yaml'),
          `dataDir: ./data\nhaproxy: { certDir: ./certs2, instances: [ { runtime: "unix:${join(dir, 'haproxy.sock')}" } ] }\napi: { listen: "127.0.0.1:${await freePort()}" }\n`,
        );
        const second = await runBuilt(['--config', join(dir, 'second.yaml'), 'run']);
        console.log(`second daemon refused in ${second.ms} ms (process start included)`);
        assert.equal(second.code, 1, second.stderr);
        assert.match(second.stderr, new RegExp(`in use by another haproxy-certd daemon \\(pid ${first.pid} on host `));
        assert.doesNotMatch(second.stderr, /\n\s+at /, 'no stack trace');
        assert.ok(second.ms < 5_000, `refused within 5 s (took ${second.ms} ms)`);
        assert.equal(sentinel.connections(), 0, 'the refused daemon must not connect to any instance');
      } finally {
        await sentinel.close();
      }
    } finally {
      first.kill('SIGTERM');
      await once(first, 'close');
    }
  });

  test('`run` with its API port taken exits 1 with a clear message and no stack trace, before any HAProxy hears from it', async () => {
    const port = await freePort();
    const taken = createNetServer();
    await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve));
    const sentinel = await sentinelSocket(join(dir, 'haproxy2.sock'));
    try {
      await writeFile(
        join(dir, 'taken.yaml'),
        `dataDir: ./data-taken\nhaproxy: { certDir: ./certs-taken, instances: [ { runtime: "unix:${join(dir, 'haproxy2.sock')}" } ] }\napi: { listen: "127.0.0.1:${port}" }\n`,
      );
      const r = await runBuilt(['--config', join(dir, 'taken.yaml'), 'run']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`api.listen 127.0.0.1:${port} is in use by another process`));
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.equal(sentinel.connections(), 0, 'no instance may hear from a daemon that failed to start');
    } finally {
      await sentinel.close();
      await new Promise((r) => taken.close(r));
    }
  });
});

/** 100 long names (~190 characters each): the leaf alone is over HAProxy's 16 KB CLI buffer. */
async function oversizedBundle(): Promise<string> {
  const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}`;
  const names = Array.from({ length: 99 }, (_, i) => `${long}.n${i}.big.test`);
  const cert = await selfSigned('big.test', { moreNames: names });
  assert.ok(cert.pem.length > 17_000, `bundle of ${cert.pem.length} bytes`);
  return cert.pem;
}

describe('a certificate the runtime API cannot take: one reload, no loop, on-demand unaffected', () => {
  let stack: Stack;
  let api: DaemonClient;
  before(async () => {
    stack = await startStack(
      {
        issuers: { internal: { type: 'local-ca' } },
        onDemand: { issuer: 'internal', allow: ['*.od.test'], maxCertificates: 100, rateLimit: { perMinute: 600, burst: 100 } },
      },
      { reloadMinIntervalMs: 500 },
      { master: true, reconcileEvery: '1s' },
    );
    api = new DaemonClient(stack.daemon.api.url, stack.daemon.token);
  });
  after(() => stack.stop());

  test('imported once: the caller is told it is served; reconciles every second trigger no further reload', async () => {
    // Under heavy load the master CLI may refuse a connection (its backlog): asked again, since a
    // reload would show anyway, as another worker pid.
    const workerPid = async (): Promise<number> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await stack.haproxy.workerPid();
        } catch (err) {
          if (attempt >= 50) throw err;
          await new Promise((res) => setTimeout(res, 100));
        }
      }
    };
    const pidBefore = await workerPid();
    const r = await api.call<IssueResult>('POST', '/import', { cert: await oversizedBundle() });
    assert.deepEqual(r.deploy?.ok, ['h1'], `told where it is served: ${JSON.stringify(r.deploy)}`);
    assert.equal((await handshake(stack.tlsPort, 'big.test')).serial, r.cert.serial);
    const workers = new Set([await workerPid()]);
    assert.ok(!workers.has(pidBefore), 'loaded through one reload');
    // 8 reconcile passes: each reads `show ssl cert` of the big certificate, a reply cut at 16 KB.
    const until = Date.now() + 8_000;
    let onDemand = 0;
    while (Date.now() < until) {
      const name = `n${onDemand++}.od.test`;
      const served = await handshake(stack.tlsPort, name);
      assert.ok(served.san.includes(name), `${name} served its own certificate at the first handshake (got ${served.san.join(',')})`);
      workers.add(await workerPid());
      await new Promise((res) => setTimeout(res, 250));
    }
    assert.equal(workers.size, 1, `no further reload over 8 reconcile passes (workers seen: ${[...workers].join(', ')})`);
    const status = stack.daemon.deployer.status()[0]!;
    assert.equal(status.state, 'up');
    assert.equal(status.pending, 0, JSON.stringify(status));
  });

  test('a certificate over the names limit is refused at the edge with the limit named', async () => {
    const tooMany = await selfSigned('many.test', { moreNames: Array.from({ length: 499 }, (_, i) => `m${i}.many.test`) });
    await assert.rejects(api.call('POST', '/import', { cert: tooMany.pem }), (err: CertdError) => {
      assert.equal(err.code, 'CERTD_E_TOO_MANY_NAMES');
      assert.match(err.message, /500 names; at most 100/);
      return true;
    });
  });
});

describe('an instance up but not loading our crt-list is shown misconfigured, with the fix', () => {
  let haproxy: TestHaproxy;
  let daemon: Daemon;
  let dir: string;
  before(async () => {
    haproxy = await startHaproxy();
    dir = await mkdtemp(join(tmpdir(), 'certd-misconf-'));
    // This HAProxy's binds load its own crt-list, not the one in the daemon's certDir.
    const config = configFromObject({ dataDir: './data', haproxy: { instances: [{ runtime: haproxy.runtime, name: 'h1' }], certDir: './certs' }, api: { listen: `127.0.0.1:${await freePort()}` } }, dir);
    daemon = await Daemon.start(config, { log: silentLogger });
  });
  after(async () => {
    await daemon?.stop();
    await haproxy?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('state misconfigured, and lastError says which crt-list no bind loads and what to do', async () => {
    await eventually(async () => daemon.deployer.status()[0]?.state === 'misconfigured', 30_000, 'instance state "misconfigured"');
    const status = daemon.deployer.status()[0]!;
    assert.match(status.lastError ?? '', /no bind line of its config loads the crt-list .*certs\/crt-list\.txt: add `ssl crt-list/);
  });
});

/**
 * A CA whose newAccount answers with the RFC 8555 problem document `problem` names (rateLimited
 * with Retry-After, or serverInternal): what Let's Encrypt sends when it limits or fails.
 */
async function refusingCa(): Promise<{ base: string; close: () => Promise<void> }> {
  let nonce = 0;
  const server = createHttpServer((req, res) => {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const kind = req.url!.split('/')[1]!;
    res.setHeader('replay-nonce', `n${nonce++}`);
    if (req.url!.endsWith('/dir')) {
      res.setHeader('content-type', 'application/json');
      const at = (what: string) => `${base}/${kind}/${what}`;
      res.end(JSON.stringify({ newNonce: at('nonce'), newAccount: at('account'), newOrder: at('order'), revokeCert: at('revoke'), keyChange: at('key-change') }));
    } else if (req.url!.endsWith('/nonce')) {
      res.writeHead(req.method === 'HEAD' ? 200 : 204).end();
    } else if (kind === 'limited') {
      res.writeHead(429, { 'content-type': 'application/problem+json', 'retry-after': '120' });
      res.end(JSON.stringify({ type: 'urn:ietf:params:acme:error:rateLimited', detail: 'too many new accounts from this address', status: 429 }));
    } else {
      res.writeHead(500, { 'content-type': 'application/problem+json' });
      res.end(JSON.stringify({ type: 'urn:ietf:params:acme:error:serverInternal', detail: 'the CA is having a bad day', status: 500 }));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('API errors: the status follows the error category', () => {
  let stack: Stack;
  let url: string;
  let token: string;
  let ca: Awaited<ReturnType<typeof refusingCa>>;
  const mounts: string[] = [];
  before(async () => {
    ca = await refusingCa();
    stack = await startStack({
      issuers: {
        internal: { type: 'local-ca' },
        // Nothing listens there: a CA outage.
        down: { type: 'acme', directory: `https://127.0.0.1:${await freePort()}/dir`, email: 'ops@example.com' },
        limited: { type: 'acme', directory: `${ca.base}/limited/dir`, email: 'ops@example.com' },
        failing: { type: 'acme', directory: `${ca.base}/failing/dir`, email: 'ops@example.com' },
      },
    });
    url = stack.daemon.api.url;
    token = stack.daemon.token;
  });
  after(async () => {
    for (const m of mounts) execFileSync('umount', ['-l', m]);
    await stack?.stop();
    await ca?.close();
  });
  const post = (path: string, body: string, auth = `Bearer ${token}`) =>
    fetch(`${url}/v1${path}`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body });

  test('401 for a token without the Bearer scheme; 413 naming the limit; 404; 400', async () => {
    const noScheme = await post('/certs', JSON.stringify({ names: ['a.test'] }), token);
    assert.equal(noScheme.status, 401);
    // curl (async: the daemon answers from this process): fetch aborts its upload when the answer
    // comes before the body is read.
    const bigFile = join(stack.dir, 'big.json');
    await writeFile(bigFile, JSON.stringify({ cert: 'x'.repeat(1024 * 1024 + 10) }));
    const { stdout: big } = await execFileAsync('curl', ['-s', '-w', '\n%{http_code}', '-X', 'POST', '-H', `authorization: Bearer ${token}`, '-H', 'content-type: application/json', '--data-binary', `@${bigFile}`, `${url}/v1/import`]);
    assert.match(big, /\n413$/);
    assert.match(big, /limit of 1048576 bytes/);
    const missing = await fetch(`${url}/v1/certs/nothing.test`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    assert.equal(missing.status, 404);
    assert.equal((await post('/certs', JSON.stringify({ names: ['../x'] }))).status, 400);
  });

  test('503 when the CA cannot be reached', async () => {
    const r = await post('/certs', JSON.stringify({ names: ['outage.test'], issuer: 'down' }));
    const body = (await r.json()) as { error: { code: string } };
    assert.equal(r.status, 503, JSON.stringify(body));
    assert.equal(body.error.code, 'CERTD_E_ACME_UNREACHABLE');
  });

  test("429 with the CA's Retry-After when the CA rate-limits; 502 when it fails", async () => {
    const limited = await post('/certs', JSON.stringify({ names: ['limited.test'], issuer: 'limited' }));
    const body = (await limited.json()) as { error: { code: string; message: string } };
    assert.equal(limited.status, 429, JSON.stringify(body));
    assert.equal(body.error.code, 'CERTD_E_ACME_RATE_LIMITED');
    assert.equal(limited.headers.get('retry-after'), '120');
    const failing = await post('/certs', JSON.stringify({ names: ['failing.test'], issuer: 'failing' }));
    const failed = (await failing.json()) as { error: { code: string; message: string } };
    assert.equal(failing.status, 502, JSON.stringify(failed));
    assert.match(failed.error.message, /bad day/);
  });

  test('409 while another daemon holds the store: the CLI says who, exit 1', async () => {
    // The stack's daemon holds this dataDir; a second one is a conflict, not an internal error.
    const cfg = join(stack.dir, 'second.yaml');
    await writeFile(cfg, `dataDir: ./data\nhaproxy: { certDir: ./certs2 }\napi: { listen: "127.0.0.1:${await freePort()}" }\n`);
    const r = await runBuilt(['--config', cfg, 'run']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /CERTD_E_STORE_LOCKED/);
    assert.equal(outcomeOf(new StoreLockedError('x')).status, 409);
  });

  test('507 on a full disk, saying that nothing was applied', async () => {
    // The store moves onto a tiny tmpfs, filled up: every write fails with ENOSPC.
    const dataDir = stack.config.dataDir;
    await mkdir(join(dataDir, 'pending'), { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', join(dataDir, 'pending')]);
    mounts.push(join(dataDir, 'pending'));
    const fh = await open(join(dataDir, 'pending', 'filler'), 'w');
    await fh.write(Buffer.alloc(512 * 1024)).catch(() => undefined);
    await fh.close();
    const r = await post('/certs', JSON.stringify({ names: ['full.test'] }));
    const body = (await r.json()) as { error: { code: string; message: string } };
    assert.equal(r.status, 507, JSON.stringify(body));
    assert.equal(body.error.code, 'CERTD_E_DISK_FULL');
    assert.match(body.error.message, /not applied.*nothing was served or changed/);
    assert.equal((await handshake(stack.tlsPort, 'full.test')).san.includes('full.test'), false);
  });

  test('every category maps to one status and one exit code', () => {
    const expected: Record<ErrorCategory, [number, number]> = {
      input: [400, 2],
      'too-large': [413, 2],
      auth: [401, 1],
      'not-found': [404, 1],
      conflict: [409, 1],
      'rate-limited': [429, 1],
      upstream: [502, 1],
      unavailable: [503, 1],
      'storage-full': [507, 1],
      internal: [500, 1],
    };
    for (const [category, [status, exit]] of Object.entries(expected) as [ErrorCategory, [number, number]][]) {
      const Kind = errorKind(`CERTD_E_TEST_${category}`, category);
      assert.deepEqual(outcomeOf(new Kind('x')), { status, exit }, category);
    }
    assert.equal(categoryOf(Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' })), 'storage-full');
    assert.equal(categoryOf(new Error('a bug')), 'internal');
  });
});
