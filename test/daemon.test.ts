import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { request as httpsRequest, Agent } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { DaemonClient } from '../src/cli/daemon-client.js';
import type { IssueResult } from '../src/service/cert-service.js';
import { makeDeployEntry } from '../src/haproxy/deploy/entry.js';
import { parseRuntimeAddress } from '../src/haproxy/runtime/address.js';
import { RuntimeSession } from '../src/haproxy/runtime/session.js';
import { selfSigned } from './helpers/certs.js';
import { eventually, handshake, startStack, type Stack } from './helpers/stack.js';

describe('daemon + real HAProxy: issue, replace, remove, restart — no reload', () => {
  let stack: Stack;
  let ca: string;
  let api: DaemonClient;

  before(async () => {
    stack = await startStack();
    ca = await stack.rootPem();
    api = new DaemonClient(stack.daemon.api.url, stack.daemon.token);
  });
  after(() => stack.stop());

  const issue = (names: string[]) => api.call<IssueResult>('POST', '/certs', { names });
  const metric = async (re: RegExp) => Number(re.exec(await (await fetch(`${stack.daemon.api.url}/metrics`)).text())?.[1] ?? 0);

  test('a newly issued name is served at once by the same HAProxy worker', async () => {
    const pidBefore = await stack.haproxy.workerPid();
    const result = await issue(['fresh.test', 'www.fresh.test']);
    // The first handshake right after `issue` returns must already get it: no polling here.
    const hs = await handshake(stack.tlsPort, 'www.fresh.test', { ca });
    assert.equal(hs.authorized, true, hs.authorizationError);
    assert.equal(hs.serial, result.cert.serial);
    assert.ok(hs.san.includes('www.fresh.test'));
    assert.deepEqual(result.deploy?.ok, ['h1']);
    assert.equal(await stack.haproxy.workerPid(), pidBefore, 'worker pid changed: HAProxy was reloaded');
  });

  test('unknown names get the default certificate', async () => {
    const hs = await handshake(stack.tlsPort, 'unknown.test', { ca });
    assert.equal(hs.authorized, false);
    assert.equal(hs.subject, 'haproxy-certd default certificate');
  });

  test('renewal changes what new handshakes get; an open keep-alive connection keeps working', async () => {
    const first = await issue(['keep.test']);
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca, servername: 'keep.test' });
    const get = () =>
      new Promise<{ body: string; serial: string; socketId: unknown }>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port: stack.tlsPort, servername: 'keep.test', path: '/', agent, ca }, (res) => {
          const socket = res.socket as TLSSocket;
          const serial = socket.getPeerCertificate().serialNumber.toLowerCase();
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ body, serial, socketId: socket }));
        });
        req.on('error', reject);
        req.end();
      });
    const before = await get();
    assert.equal(before.serial, first.cert.serial);
    const renewed = (await api.call<{ results: IssueResult[] }>('POST', '/renew', { names: ['keep.test'] })).results[0]!;
    assert.notEqual(renewed.cert.serial, first.cert.serial);
    const again = await get();
    assert.equal(again.socketId, before.socketId, 'keep-alive connection was replaced');
    assert.match(again.body, /keep\.test/);
    assert.equal(again.serial, first.cert.serial, 'the open connection keeps its handshake');
    agent.destroy();
    const hs = await handshake(stack.tlsPort, 'keep.test', { ca });
    assert.equal(hs.serial, renewed.cert.serial);
  });

  test('removing a name stops serving it and deletes its files', async () => {
    await issue(['gone.test']);
    assert.equal((await handshake(stack.tlsPort, 'gone.test', { ca })).authorized, true);
    await api.call('DELETE', '/certs/gone.test');
    const hs = await handshake(stack.tlsPort, 'gone.test', { ca });
    assert.equal(hs.subject, 'haproxy-certd default certificate');
    const files = await readdir(stack.config.haproxy.certDir);
    assert.ok(!files.includes('gone.test.pem'));
    assert.doesNotMatch(await readFile(stack.config.haproxy.crtList, 'utf8'), /gone\.test/);
  });

  test('20 concurrent issues of distinct names: all served, each with its own certificate', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `c${i}.burst.test`);
    const results = await Promise.all(names.map((n) => issue([n])));
    for (const [i, name] of names.entries()) {
      const hs = await handshake(stack.tlsPort, name, { ca });
      assert.equal(hs.authorized, true, `${name}: ${hs.authorizationError}`);
      assert.equal(hs.serial, results[i]!.cert.serial, `${name} serves another certificate`);
      assert.ok(hs.san.includes(name));
    }
  });

  // That each is answered right after its own push, before the ones behind it, is checked where a
  // push can be held (instance-sync.test.ts): here HAProxy answers the pipelined six at once.
  test('concurrent deploys: six marked at once are each answered as served', async () => {
    const { deployer } = stack.daemon;
    const names = Array.from({ length: 6 }, (_, i) => `w${i}.batch.test`);
    const entries = await Promise.all(
      names.map(async (n) => makeDeployEntry(stack.config.haproxy.certDir, { id: n, bundle: await selfSigned(n), sni: [n] })),
    );
    // All six are marked before the instance's worker runs, so it pushes them in one pass.
    const servedWhenAnswered = await Promise.all(
      entries.map((e) => deployer.upsert([e], { answerWhenServed: true }).then((outcome) => outcome.ok.length)),
    );
    assert.deepEqual(servedWhenAnswered, names.map(() => 1), 'each answered as served by the one instance');
    for (const n of names) assert.deepEqual((await handshake(stack.tlsPort, n)).san, [n]);
    await deployer.drain(); // their files follow the answers
    await deployer.remove(names);
  });

  test('concurrent issues of one name: one issuance', async () => {
    const issuedBefore = await metric(/^certd_issue_total\{issuer="internal",result="ok"\} (\d+)$/m);
    const results = await Promise.all(Array.from({ length: 10 }, () => issue(['same.test'])));
    assert.equal(new Set(results.map((r) => r.cert.serial)).size, 1);
    assert.equal(await metric(/^certd_issue_total\{issuer="internal",result="ok"\} (\d+)$/m), issuedBefore + 1);
    const again = await issue(['same.test']);
    assert.equal(again.issued, false, 'an existing valid certificate is reused');
    assert.equal(again.cert.serial, results[0]!.cert.serial);
  });

  test('hostile names are refused with a clear error and change nothing', async () => {
    await stack.daemon.deployer.drain(); // no rewrite of an earlier test's change in flight
    const before = await readdir(stack.config.haproxy.certDir);
    const certsBefore = (await api.call<{ certs: unknown[] }>('GET', '/certs')).certs.length;
    for (const bad of ['../x', 'a b', 'x;y', 'a'.repeat(254), 'a\nb', 'x\u0000y', '', '*', 'ünï.test']) {
      await assert.rejects(issue([bad]), (err: { code?: string }) => err.code === 'CERTD_E_INVALID_NAME', JSON.stringify(bad));
    }
    assert.deepEqual(await readdir(stack.config.haproxy.certDir), before);
    assert.equal((await api.call<{ certs: unknown[] }>('GET', '/certs')).certs.length, certsBefore);
  });

  test('the API refuses calls without the token', async () => {
    await assert.rejects(new DaemonClient(stack.daemon.api.url, 'wrong').call('GET', '/certs'), { code: 'CERTD_E_API_AUTH' });
  });

  test('HAProxy killed and restarted with an empty runtime state: everything served again within 5 s', async () => {
    const served = ['fresh.test', 'keep.test', 'c7.burst.test'];
    const addsBefore = await metric(/^certd_deploy_total\{instance="h1",op="add"\} (\d+)$/m);
    // No rewrite in flight, which would put the full crt-list back before HAProxy starts.
    await stack.daemon.deployer.drain();
    await stack.haproxy.kill();
    // An instance that comes back knowing only the default certificate: the daemon must re-push.
    const list = await readFile(stack.config.haproxy.crtList, 'utf8');
    await writeFile(stack.config.haproxy.crtList, list.split('\n').slice(0, 2).join('\n') + '\n');
    await stack.haproxy.start();
    // Its own certificate, not just a trusted one: the default certificate verifies against the root too.
    await eventually(async () => {
      for (const n of served) if (!(await handshake(stack.tlsPort, n, { ca })).san.includes(n)) return false;
      return true;
    }, 5_000, 're-push after restart');
    // Served because the daemon pushed them again, not from the (truncated) crt-list file. Counted
    // once HAProxy's replies to the pipelined batch are read, which can be after it serves the first.
    await eventually(async () => (await metric(/^certd_deploy_total\{instance="h1",op="add"\} (\d+)$/m)) >= addsBefore + served.length, 5_000, 'the re-pushes counted');
  });

  test('HAProxy down: issue still stores it, the daemon retries and catches up when HAProxy is back', async () => {
    await stack.haproxy.kill();
    const result = await issue(['while-down.test']);
    assert.equal(result.deploy?.ok.length, 0);
    assert.equal(result.deploy?.failed[0]?.instance, 'h1');
    await stack.haproxy.start();
    await eventually(async () => (await handshake(stack.tlsPort, 'while-down.test', { ca })).authorized, 5_000, 'served after HAProxy is back');
    await eventually(async () => {
      const h1 = stack.daemon.deployer.status()[0]!;
      return h1.state === 'up' && h1.pending === 0;
    }, 5_000, 'instance up and in sync');
  });

  test('/metrics exposes expiry and deploy counters', async () => {
    const text = await (await fetch(`${stack.daemon.api.url}/metrics`)).text();
    assert.match(text, /certd_cert_not_after_timestamp_seconds\{cert="fresh\.test",issuer="internal",origin="api",serial="[0-9a-f]+"\} \d+/);
    assert.match(text, /certd_deploy_total\{instance="h1",op="add"\} \d+/);
    assert.match(text, /certd_instance_up\{instance="h1"\} 1/);
  });
});

describe('daemon + real HAProxy: another client left a certificate transaction open', () => {
  let stack: Stack;
  const logged: { event?: string; named?: string; msg?: string }[] = [];

  before(async () => {
    const sink = { write: (line: string) => void logged.push(JSON.parse(line) as (typeof logged)[number]) };
    stack = await startStack({}, { log: pino({ level: 'warn' }, sink) });
  });
  after(() => stack.stop());

  test('on another path: the next push aborts it, is served within 1 s, and the abort is logged', async () => {
    const api = new DaemonClient(stack.daemon.api.url, stack.daemon.token);
    const ca = await stack.rootPem();
    await api.call<IssueResult>('POST', '/certs', { names: ['before.txn.test'] }); // the daemon's session is up
    const foreign = await RuntimeSession.open(parseRuntimeAddress(stack.config.haproxy.instances[0]!.runtime));
    try {
      const left = await selfSigned('left-open.test');
      assert.match(await foreign.execute('new ssl cert /v/left-open.pem'), /^New empty certificate store/);
      assert.match(await foreign.execute('set ssl cert /v/left-open.pem', left.pem), /^Transaction created/);
      const t0 = Date.now();
      const result = await api.call<IssueResult>('POST', '/certs', { names: ['after.txn.test'] });
      const hs = await handshake(stack.tlsPort, 'after.txn.test', { ca });
      const took = Date.now() - t0;
      assert.deepEqual(result.deploy?.ok, ['h1']);
      assert.equal(hs.serial, result.cert.serial);
      assert.ok(took < 1_000, `issued and served in ${took} ms`);
      assert.ok(
        logged.some((l) => l.event === 'foreign-transaction-aborted' && l.named === '/v/left-open.pem'),
        `logged: ${JSON.stringify(logged)}`,
      );
      assert.doesNotMatch(await foreign.execute('show ssl cert'), /^\*/m, 'no transaction left open');
    } finally {
      foreign.destroy();
    }
  });
});
