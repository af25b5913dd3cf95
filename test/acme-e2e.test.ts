import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DaemonClient } from '../src/cli/daemon-client.js';
import type { IssueResult } from '../src/service/cert-service.js';
import { startBind9, type TestBind9 } from './helpers/bind9.js';
import { startPebble, type TestPebble } from './helpers/pebble.js';
import { freePort } from './helpers/ports.js';
import { eventually, handshake, startStack, type Stack } from './helpers/stack.js';

const run = promisify(execFile);

async function verifyChain(dir: string, chainPem: string, rootPem: string): Promise<void> {
  const [leaf, ...rest] = chainPem.split(/(?<=-----END CERTIFICATE-----\n)/).filter((b) => b.includes('BEGIN'));
  await writeFile(join(dir, 'leaf.pem'), leaf!);
  await writeFile(join(dir, 'chain.pem'), rest.join(''));
  await writeFile(join(dir, 'root.pem'), rootPem);
  await run('openssl', ['verify', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'chain.pem'), join(dir, 'leaf.pem')]);
}

describe('ACME HTTP-01 through HAProxy, validated for real by Pebble', () => {
  let pebble: TestPebble;
  let stack: Stack;
  let api: DaemonClient;

  before(async () => {
    const httpPort = await freePort();
    pebble = await startPebble({ httpPort, validitySeconds: 12 });
    const caBundle = join(pebble.dir, 'pebble-tls.pem');
    await writeFile(caBundle, pebble.tlsCaPem);
    stack = await startStack(
      { issuers: { le: { type: 'acme', directory: pebble.directoryUrl, caBundle, challenge: 'http-01', email: 'ops@example.com' } } },
      { renewMaxSleepMs: 300, renewBackoff: { baseMs: 500, capMs: 1_000 } },
      { acmeHttpPort: httpPort },
    );
    api = new DaemonClient(stack.daemon.api.url, stack.daemon.token);
  });
  after(async () => {
    await stack.stop();
    await pebble.stop();
  });

  test('issue: Pebble validates through HAProxy (answered from acme.map); the certificate is then served', async () => {
    const r = await api.call<IssueResult>('POST', '/certs', { names: ['web.acme.test', 'www.web.acme.test'] });
    assert.equal(r.issued, true);
    const stored = await stack.daemon.store.loadCert('web.acme.test');
    await verifyChain(stack.dir, stored!.certPem, await pebble.root(0));
    const hs = await handshake(stack.tlsPort, 'www.web.acme.test');
    assert.equal(hs.serial, r.cert.serial);
    // Tokens are removed after validation, from the map file and from HAProxy.
    assert.doesNotMatch(await readFile(stack.daemon.deployer.mapPath('acme'), 'utf8'), /\S+ \S+\.\S+/);
  });

  test('short-lived certificates renew on schedule and are served with no reload', async () => {
    const pid = await stack.haproxy.workerPid();
    const first = (await handshake(stack.tlsPort, 'web.acme.test')).serial;
    await eventually(async () => (await handshake(stack.tlsPort, 'web.acme.test')).serial !== first, 20_000, 'renewed');
    assert.equal(await stack.haproxy.workerPid(), pid);
  });

  test('a CA outage during renewal is retried with backoff; the old certificate keeps serving', async () => {
    await pebble.stopCa();
    const serving = (await handshake(stack.tlsPort, 'web.acme.test')).serial;
    const failing = async () => /certd_renewal_failing\{cert="web\.acme\.test"\} 1/.test(await (await fetch(`${stack.daemon.api.url}/metrics`)).text());
    await eventually(failing, 20_000, 'renewal failing while the CA is down');
    assert.equal((await handshake(stack.tlsPort, 'web.acme.test')).serial, serving, 'old certificate still served');
    const plan = stack.daemon.scheduler.dueTimes().get('web.acme.test')!;
    assert.ok(plan.attempts >= 1 && plan.nextTryAt > Date.now() - 1_000, 'a backoff is planned, not a tight loop');
    await pebble.startCa();
    await eventually(async () => (await handshake(stack.tlsPort, 'web.acme.test')).serial !== serving, 20_000, 'renewed after the outage');
    await eventually(async () => !(await failing()), 5_000, 'failing metric cleared');
  });

  test('an unreachable CA or a refused name: a typed error, nothing stored', async () => {
    const before = (await stack.daemon.store.listCerts()).length;
    await assert.rejects(api.call('POST', '/certs', { names: ['bad_name.acme.test'] }), (e: { code?: string }) => e.code === 'CERTD_E_INVALID_NAME');
    await pebble.stopCa();
    try {
      await assert.rejects(api.call('POST', '/certs', { names: ['down.acme.test'], issuer: 'le' }), (e: { code?: string }) => e.code === 'CERTD_E_ACME_UNREACHABLE');
    } finally {
      await pebble.startCa();
    }
    assert.equal((await stack.daemon.store.listCerts()).length, before);
    assert.deepEqual(await stack.daemon.store.listPending(), []);
  });
});

describe('ACME DNS-01 via RFC 2136 to a real bind9 (TSIG), Pebble resolving through it', () => {
  let bind: TestBind9;
  let pebble: TestPebble;
  let stack: Stack;
  let api: DaemonClient;

  before(async () => {
    bind = await startBind9();
    pebble = await startPebble({ httpPort: await freePort(), dnsServer: bind.server });
    const caBundle = join(pebble.dir, 'pebble-tls.pem');
    await writeFile(caBundle, pebble.tlsCaPem);
    const dns = (secret: string) => ({ rfc2136: { server: bind.server, zone: bind.zone, tsig: { ...bind.keys.sha256, secret } } });
    stack = await startStack({
      issuers: {
        dns: { type: 'acme', directory: pebble.directoryUrl, caBundle, challenge: 'dns-01', dns: dns(bind.keys.sha256.secret) },
        wrongkey: { type: 'acme', directory: pebble.directoryUrl, caBundle, challenge: 'dns-01', dns: dns(Buffer.alloc(32, 1).toString('base64')) },
      },
    });
    api = new DaemonClient(stack.daemon.api.url, stack.daemon.token);
  });
  after(async () => {
    await stack.stop();
    await pebble.stop();
    await bind.stop();
  });

  test('a wildcard certificate is issued and served for any subdomain', async () => {
    const r = await api.call<IssueResult>('POST', '/certs', { names: [`*.${bind.zone}`, bind.zone], issuer: 'dns' });
    assert.equal(r.cert.id, `_wildcard.${bind.zone}`);
    for (const sni of [`anything.${bind.zone}`, bind.zone]) assert.equal((await handshake(stack.tlsPort, sni)).serial, r.cert.serial, sni);
    const { stdout } = await run('dig', ['+short', '-p', String(bind.port), '@127.0.0.1', `_acme-challenge.${bind.zone}`, 'TXT']);
    assert.equal(stdout.trim(), '', 'challenge records cleaned up');
  });

  test('a wrong TSIG secret: CERTD_E_DNS_TSIG, nothing stored', async () => {
    const before = (await stack.daemon.store.listCerts()).length;
    await assert.rejects(api.call('POST', '/certs', { names: [`tsig.${bind.zone}`], issuer: 'wrongkey' }), (e: { code?: string }) => e.code === 'CERTD_E_DNS_TSIG');
    assert.equal((await stack.daemon.store.listCerts()).length, before);
  });
});

/** Pebble + a stack whose on-demand issues from it (HTTP-01 answered by HAProxy from acme.map). */
async function onDemandAcme(maxWait: string): Promise<{ pebble: TestPebble; stack: Stack }> {
  const httpPort = await freePort();
  const pebble = await startPebble({ httpPort });
  const caBundle = join(pebble.dir, 'pebble-tls.pem');
  await writeFile(caBundle, pebble.tlsCaPem);
  try {
    const stack = await startStack(
      {
        issuers: { le: { type: 'acme', directory: pebble.directoryUrl, caBundle, challenge: 'http-01' } },
        onDemand: { issuer: 'le', allow: ['*.od.acme.test'], maxCertificates: 10, maxWait },
      },
      {},
      { acmeHttpPort: httpPort },
    );
    return { pebble, stack };
  } catch (err) {
    await pebble.stop();
    throw err;
  }
}

describe('on-demand from an ACME CA (Pebble): the slow issuer', () => {
  test('maxWait long enough: the first handshake waits for the order and gets the CA-signed certificate', async () => {
    const { pebble, stack } = await onDemandAcme('15s');
    try {
      const served = await handshake(stack.tlsPort, 'first.od.acme.test', { ca: await pebble.root(0), timeoutMs: 20_000 });
      assert.equal(served.authorized, true, served.authorizationError);
      assert.deepEqual(served.san, ['first.od.acme.test']);
    } finally {
      await stack.stop();
      await pebble.stop();
    }
  });

  test('an issuance that failed (the CA down) does not quiet on-demand: once the CA is back, the next new name is served at once', async () => {
    const { pebble, stack } = await onDemandAcme('15s');
    try {
      await pebble.stopCa();
      const failed = await handshake(stack.tlsPort, 'down.od.acme.test', { timeoutMs: 20_000 });
      assert.equal(failed.subject, 'haproxy-certd default certificate');
      const metrics = await (await fetch(`${stack.daemon.api.url}/metrics`)).text();
      assert.match(metrics, /^certd_ondemand_decisions_total\{status="failed",[^}]*\} 1$/m, 'the daemon answered that the issuance failed');
      await pebble.startCa();
      // Within the Lua's 5 s breaker window: a 502 is the daemon's answer, not a failed daemon.
      const served = await handshake(stack.tlsPort, 'back.od.acme.test', { ca: await pebble.root(0), timeoutMs: 20_000 });
      assert.equal(served.authorized, true, `${served.authorizationError} (subject ${served.subject})`);
    } finally {
      await stack.stop();
      await pebble.stop();
    }
  });

  test('maxWait shorter than the order: the first handshake goes on with the default certificate, the order finishes behind', async () => {
    const { pebble, stack } = await onDemandAcme('1ms');
    try {
      const ca = await pebble.root(0);
      const first = await handshake(stack.tlsPort, 'later.od.acme.test', { ca, timeoutMs: 5_000 });
      assert.equal(first.subject, 'haproxy-certd default certificate', 'no ACME order completes in 1 ms');
      const metrics = await (await fetch(`${stack.daemon.api.url}/metrics`)).text();
      const decisions = metrics.split('\n').filter((l) => l.startsWith('certd_ondemand_decisions_total{'));
      assert.deepEqual(decisions, ['certd_ondemand_decisions_total{status="pending",reason="issuing in the background"} 1']);
      await eventually(async () => (await handshake(stack.tlsPort, 'later.od.acme.test', { ca })).authorized, 20_000, 'the CA-signed certificate served once the order finished');
      await stack.daemon.service.drain(); // the store record follows the push
      assert.equal((await stack.daemon.store.listCerts()).filter((m) => m.origin === 'ondemand').length, 1, 'one order, whatever the handshakes meanwhile');
    } finally {
      await stack.stop();
      await pebble.stop();
    }
  });
});
