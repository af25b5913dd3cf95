import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { onDemandToken } from '../src/daemon/token.js';
import { certDirLayout } from '../src/haproxy/cert-dir.js';
import { issuedTotal, metric, pool } from './helpers/ondemand.js';
import { eventually, handshake, startStack, type Stack } from './helpers/stack.js';
import { tempDir } from './helpers/temp-dir.js';

const run = promisify(execFile);
const DEFAULT_CN = 'haproxy-certd default certificate';
const DAY_MS = 86_400_000;
/** Generous for a loaded 2-core machine: how long a real certificate may take to be issued, pushed and listed in known.map. */
const REAL_CERT_WAIT_MS = 15_000;



/** The root's CN: what a real (root-signed) certificate names as its issuer. */
const rootCn = (rootPem: string) => /CN=([^\n]+)/.exec(new X509Certificate(rootPem).subject)![1]!;

/** Waits until a handshake for `name` is served the real certificate (signed by the root itself). */
async function realCertificate(stack: Stack, name: string, ca: string) {
  let last: Awaited<ReturnType<typeof handshake>> | undefined;
  await eventually(async () => {
    last = await handshake(stack.tlsPort, name, { ca });
    return last.authorized && last.issuer === rootCn(ca);
  }, REAL_CERT_WAIT_MS, `${name}: the real certificate issued behind its first handshake, pushed and served`);
  return last!;
}

/** Rotates the forge intermediate while a stream of handshakes (known and new names) runs: none may fail. */
async function rotationUnderLoad(stack: Stack, ca: string, domain: string) {
  const layout = certDirLayout(stack.config.haproxy.certDir);
  const before = await readFile(layout.forgeCaFile, 'utf8');
  const pid = await stack.haproxy.workerPid();
  await realCertificate(stack, `first.${domain}`, ca);
  let stop = false;
  let i = 0;
  const failures: string[] = [];
  const served: boolean[] = [];
  const load = (async () => {
    while (!stop) {
      const name = i % 2 ? `first.${domain}` : `rot${i}.${domain}`;
      i++;
      try {
        const hs = await handshake(stack.tlsPort, name, { ca, timeoutMs: 10_000 });
        served.push(hs.authorized);
        if (!hs.authorized) failures.push(`${name}: ${hs.authorizationError} (${hs.subject})`);
      } catch (err) {
        failures.push(`${name}: ${(err as Error).message}`);
      }
    }
  })();
  try {
    await stack.daemon.forge!.rotate();
    await eventually(async () => (await stack.haproxy.workerPid()) !== pid, 15_000, 'the reload that loads the new intermediate: a new worker');
    // Handshakes on the new worker, for a second or so.
    const after = served.length;
    await eventually(async () => served.length > after + 10, 15_000, 'ten handshakes after the reload');
  } finally {
    stop = true;
    await load;
  }
  assert.deepEqual(failures, []);
  assert.notEqual(await readFile(layout.forgeCaFile, 'utf8'), before);
  const fresh = await handshake(stack.tlsPort, `after-rotation.${domain}`, { ca });
  assert.equal(fresh.authorized, true, fresh.authorizationError);
  assert.match(fresh.issuer, /forge CA/);
}

describe('on-demand forge: HAProxy signs the first handshake, the daemon issues the real certificate behind', () => {
  let stack: Stack;
  let ca: string;
  let askServer: Server;

  before(async () => {
    // Refuses names starting with "refuse"; allows the rest.
    askServer = createServer((req, res) => {
      const domain = new URL(req.url ?? '/', 'http://ask').searchParams.get('domain') ?? '';
      res.writeHead(domain.startsWith('refuse') ? 403 : 200).end();
    });
    askServer.listen(0, '127.0.0.1');
    await once(askServer, 'listening');
    const { port } = askServer.address() as { port: number };
    stack = await startStack(
      {
        issuers: { internal: { type: 'local-ca', validity: '10d' } },
        onDemand: {
          issuer: 'internal', allow: ['*.gen.test'], deny: ['*.blocked.gen.test'], ask: `http://127.0.0.1:${port}/ask`,
          maxCertificates: 500, maxWait: '2s', rateLimit: { perMinute: 60_000, burst: 500 }, forge: true,
        },
      },
      {},
      { master: true },
    );
    ca = await stack.rootPem();
  });
  after(async () => {
    await stack?.stop();
    askServer.closeAllConnections();
    askServer.close();
  });

  test('the forge files are written 0600 and the generated config has the forge bind', async () => {
    const layout = certDirLayout(stack.config.haproxy.certDir);
    for (const file of [layout.forgeCaFile, layout.forgeDefaultCert]) assert.equal((await stat(file)).mode & 0o777, 0o600, file);
    const cfg = await readFile(stack.haproxyConfigFile, 'utf8');
    assert.match(cfg, /generate-certificates ca-sign-file \S+\/forge\/intermediate\.pem/);
    assert.match(cfg, /tune\.ssl\.ssl-ctx-cache-size 500/);
    assert.match(cfg, /lua\.certd_ondemand_forge /);
  });

  test('first handshake of a new allowed name: forged by HAProxy, verifies against the local root with SAN = the name', async () => {
    const first = await handshake(stack.tlsPort, 'first.gen.test', { ca });
    assert.equal(first.authorized, true, first.authorizationError);
    assert.deepEqual(first.san, ['first.gen.test']);
    assert.match(first.issuer, /^haproxy-certd forge CA /, 'signed by the forge intermediate, not the root');
  });

  test('a later handshake presents the real certificate: another key, the configured validity', async () => {
    const first = await handshake(stack.tlsPort, 'second.gen.test', { ca });
    assert.match(first.issuer, /forge CA/);
    const real = await realCertificate(stack, 'second.gen.test', ca);
    assert.deepEqual(real.san, ['second.gen.test']);
    assert.notEqual(real.publicKeySha256, first.publicKeySha256, 'the real certificate has its own key');
    const lifetime = real.notAfter.getTime() - real.notBefore.getTime();
    // 10 days, plus the minute notBefore is set back for clients whose clock lags.
    assert.ok(Math.abs(lifetime - 10 * DAY_MS - 60_000) < 2_000, `lifetime ${lifetime} ms`);
    // The store record is written behind the push that served it.
    await eventually(
      async () => (await stack.daemon.store.loadCert('second.gen.test'))?.meta.origin === 'ondemand',
      REAL_CERT_WAIT_MS,
      'the real certificate stored (origin ondemand) behind the push that served it',
    );
  });

  test('a denied name and an ask-refused name get the default certificate and never reach the forge', async () => {
    const issuedBefore = await issuedTotal(stack);
    for (const name of ['x.blocked.gen.test', 'refuse1.gen.test', 'a.other.test']) {
      const hs = await handshake(stack.tlsPort, name, { ca });
      assert.equal(hs.authorized, false, name);
      assert.equal(hs.subject, DEFAULT_CN, name);
    }
    assert.ok((await metric(stack, /^certd_ondemand_decisions_total\{status="refused",reason="ask-refused"\} (\d+)$/)) >= 1);
    assert.ok((await metric(stack, /^certd_ondemand_decisions_total\{status="refused",reason="denied"\} (\d+)$/)) >= 1);
    assert.equal(await issuedTotal(stack), issuedBefore);
  });

  test('a certificate signed with the forge key for a name outside the constraints never verifies', async () => {
    const dir = tempDir('certd-forge-verify-');
    const intermediate = await readFile(certDirLayout(stack.config.haproxy.certDir).forgeCaFile, 'utf8');
    await writeFile(join(dir, 'int.pem'), intermediate, { mode: 0o600 });
    await writeFile(join(dir, 'root.pem'), ca);
    // What a thief holding the intermediate's key could make.
    const sign = async (name: string) => {
      const leaf = join(dir, `${name}.pem`);
      await run('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, `${name}.key`),
        '-CA', join(dir, 'int.pem'), '-CAkey', join(dir, 'int.pem'), '-days', '2', '-subj', `/CN=${name}`,
        '-addext', `subjectAltName=DNS:${name}`, '-out', leaf,
      ]);
      return run('openssl', ['verify', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'int.pem'), leaf]).then(
        (r) => r.stdout + r.stderr,
        (err: { stdout: string; stderr: string }) => err.stdout + err.stderr,
      );
    };
    assert.match(await sign('ok1.gen.test'), /: OK/);
    assert.match(await sign('evil.other.test'), /permitted subtree violation/);
    assert.match(await sign('x.blocked.gen.test'), /excluded subtree violation/);
  });

  test('rotation of the intermediate while handshakes run: a reload, 0 failed handshakes, new names forged from the new one', async () => {
    await rotationUnderLoad(stack, ca, 'gen.test');
  });

  test('a stopped daemon: an unknown name gets the default certificate in < 1 s; a known one is unaffected', async () => {
    await realCertificate(stack, 'second.gen.test', ca);
    await stack.daemon.stop();
    const t0 = Date.now();
    const unknown = await handshake(stack.tlsPort, 'while-down.gen.test', { ca, timeoutMs: 15_000 });
    const waited = Date.now() - t0;
    assert.equal(unknown.subject, DEFAULT_CN);
    assert.ok(waited < 1_000, `waited ${waited} ms`);
    const known = await handshake(stack.tlsPort, 'second.gen.test', { ca });
    assert.equal(known.authorized, true, known.authorizationError);
    assert.equal(known.issuer, rootCn(ca));
  });
});

describe('on-demand forge, local decisions: the cap and the rate limit hold, and a random-SNI flood is bounded', () => {
  let capped: Stack;
  let limited: Stack;

  before(async () => {
    capped = await startStack({
      issuers: { internal: { type: 'local-ca' } },
      onDemand: { issuer: 'internal', allow: ['*.cap.test'], maxCertificates: 2, maxWait: '2s', rateLimit: { perMinute: 60_000, burst: 500 }, forge: true },
    });
    limited = await startStack({
      issuers: { internal: { type: 'local-ca' } },
      onDemand: { issuer: 'internal', allow: ['*.flood.test'], maxCertificates: 1000, maxWait: '2s', rateLimit: { perMinute: 1, burst: 3 }, forge: true },
    });
  });
  after(async () => {
    await capped?.stop();
    await limited?.stop();
  });

  test('over the cap: the default certificate (decided in Lua: the grants never pass the cap)', async () => {
    const ca = await capped.rootPem();
    for (const name of ['c1.cap.test', 'c2.cap.test']) assert.equal((await handshake(capped.tlsPort, name, { ca })).authorized, true, name);
    const over = await handshake(capped.tlsPort, 'c3.cap.test', { ca });
    assert.equal(over.subject, DEFAULT_CN);
    await eventually(async () => (await issuedTotal(capped)) === 2, REAL_CERT_WAIT_MS, 'the two admitted names issued behind');
    // Later grants have no room either.
    await new Promise((r) => setTimeout(r, 600));
    assert.equal((await handshake(capped.tlsPort, 'c4.cap.test', { ca })).subject, DEFAULT_CN);
    assert.equal(await issuedTotal(capped), 2);
  });

  test('a random-SNI flood inside the allowed subtree: forged and issued at most what the grants allowed (the rate limit), the rest the default certificate', async () => {
    const ca = await limited.rootPem();
    const names = Array.from({ length: 60 }, (_, i) => `f${i}-${Math.random().toString(36).slice(2, 10)}.flood.test`);
    const results = await pool(names, 8, (n) => handshake(limited.tlsPort, n, { ca }));
    const forged = results.filter((r) => r.authorized);
    // burst 3, plus at most one token refilled at 1/min while the flood runs: no grant holds more.
    assert.ok(forged.length >= 3 && forged.length <= 4, `forged ${forged.length}`);
    assert.ok(results.filter((r) => !r.authorized).every((r) => r.subject === DEFAULT_CN));
    // The admitted names get their real certificates behind (stored behind their push), and nothing else is issued.
    const stored = async () => (await limited.daemon.service.list()).filter((c) => c.id.endsWith('.flood.test')).length;
    await eventually(
      async () => (await issuedTotal(limited)) === forged.length && (await stored()) === forged.length,
      REAL_CERT_WAIT_MS,
      'a real certificate issued and stored for each admitted name',
    ).catch(async (e: Error) => {
      // What each side counted, so a failure says where the names went.
      const text = await (await fetch(`${limited.daemon.api.url}/metrics`)).text();
      const decided = text.split('\n').filter((l) => l.startsWith('certd_ondemand_decisions_total'));
      throw new Error(`${e.message}: forged ${forged.length}, issued ${await issuedTotal(limited)}, stored ${await stored()}; ${decided.join('; ')}`);
    });
    assert.equal(await metric(limited, /^certd_ondemand_decisions_total\{status="approved",reason="granted"\} (\d+)$/), forged.length);
    assert.equal(await issuedTotal(limited), forged.length);
  });
});

describe('on-demand forge, local decisions (no ask, no per-client limit): Lua decides on daemon grants', () => {
  let stack: Stack;
  let ca: string;

  before(async () => {
    stack = await startStack(
      {
        issuers: { internal: { type: 'local-ca', validity: '10d' } },
        onDemand: {
          issuer: 'internal', allow: ['*.loc.test', 'exact.other.test'], deny: ['*.blocked.loc.test'],
          maxCertificates: 800, maxWait: '2s', rateLimit: { perMinute: 60_000, burst: 800 }, forge: true,
        },
      },
      {},
      { master: true },
    );
    ca = await stack.rootPem();
  });
  after(async () => {
    await stack?.stop();
  });

  test('the generated config runs the local action with the patterns as arguments', async () => {
    const cfg = await readFile(stack.haproxyConfigFile, 'utf8');
    assert.match(cfg, /lua\.certd_ondemand_local \S+ \S+ \d+ \*\.loc\.test,exact\.other\.test \*\.blocked\.loc\.test if /);
  });

  test("a fresh HAProxy's very first handshakes, 10 new names at once: each forged (they wait for the first grant call)", async () => {
    const names = Array.from({ length: 10 }, (_, i) => `cold${i}.loc.test`);
    const served = await Promise.all(names.map((name) => handshake(stack.tlsPort, name, { ca })));
    assert.deepEqual(served.flatMap((hs, i) => (hs.authorized ? [] : [`${names[i]}: ${hs.authorizationError} (${hs.subject})`])), []);
  });

  test('first handshake forged and verified against the root; a later one gets the real certificate', async () => {
    const first = await handshake(stack.tlsPort, 'first.loc.test', { ca });
    assert.equal(first.authorized, true, first.authorizationError);
    assert.deepEqual(first.san, ['first.loc.test']);
    assert.match(first.issuer, /^haproxy-certd forge CA /);
    const real = await realCertificate(stack, 'first.loc.test', ca);
    assert.notEqual(real.publicKeySha256, first.publicKeySha256, 'the real certificate has its own key');
    const exact = await handshake(stack.tlsPort, 'exact.other.test', { ca });
    assert.equal(exact.authorized, true, exact.authorizationError);
    await realCertificate(stack, 'exact.other.test', ca);
  });

  test('denied, not allowed and hostile SNIs get the default certificate, and HAProxy keeps serving', async () => {
    const issuedBefore = await issuedTotal(stack);
    // The last three are plain characters but no DNS name (the daemon would refuse to issue them).
    const hostile = ['x.blocked.loc.test', 'a.other.test', 'loc.test', `${'a'.repeat(250)}.loc.test`, 'bad_name.loc.test', 'x..loc.test', '\u00e9t\u00e9.loc.test', 'a-.loc.test', 'x.-a.loc.test', `${'a'.repeat(64)}.loc.test`];
    for (const name of hostile) {
      const hs = await handshake(stack.tlsPort, name, { ca });
      assert.equal(hs.authorized, false, name);
      assert.equal(hs.subject, DEFAULT_CN, name);
    }
    const after = await handshake(stack.tlsPort, 'after-hostile.loc.test', { ca });
    assert.equal(after.authorized, true, after.authorizationError);
    await eventually(async () => (await issuedTotal(stack)) === issuedBefore + 1, REAL_CERT_WAIT_MS, 'only after-hostile issued');
  });

  test('the grant endpoint needs the on-demand token', async () => {
    const res = await fetch(`${stack.daemon.api.url}/ondemand/grant`, { method: 'POST', body: 'grantee 1\nused 0\n' });
    assert.equal(res.status, 401);
  });

  test('a grant report naming names it had no units for is refused: the token alone cannot pass the rate limit', async () => {
    const issuedBefore = await issuedTotal(stack);
    const names = Array.from({ length: 20 }, (_, i) => `ungranted${i}.loc.test`);
    const body = ['grantee feedface', 'used 0', ...names.map((n) => `name 0 ${n}`), ''].join('\n');
    const res = await fetch(`${stack.daemon.api.url}/ondemand/grant`, { method: 'POST', headers: { authorization: `Bearer ${onDemandToken(stack.daemon.token)}` }, body });
    assert.equal(res.status, 200);
    const refused = (await res.text()).split('\n').filter((l) => l.startsWith('refuse ')).map((l) => l.slice('refuse '.length));
    assert.deepEqual(refused, names);
    // Nothing issued behind (the delay is 250 ms): give it a second, then count at the issuer.
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(await issuedTotal(stack), issuedBefore);
  });

  test('new names faster than one grant lasts: each forged (the handshake that finds the grant spent asks for the next)', async () => {
    const names = Array.from({ length: 200 }, (_, i) => `fast${i}.loc.test`);
    const failed: string[] = [];
    for (const name of names) {
      const hs = await handshake(stack.tlsPort, name, { ca });
      if (!hs.authorized) failed.push(`${name}: ${hs.authorizationError} (${hs.subject})`);
    }
    assert.deepEqual(failed, []);
  });

  test('new names 10 at once, batch after batch: each forged (a quarter left asks for the next grant; a spent one waits for the call out)', async () => {
    // A warm grant, as after any first new name, so the batches find grants, not the first call.
    assert.equal((await handshake(stack.tlsPort, 'burst-warm.loc.test', { ca })).authorized, true);
    const failed: string[] = [];
    for (let b = 0; b < 15; b++) {
      const names = Array.from({ length: 10 }, (_, i) => `burst${b * 10 + i}.loc.test`);
      const served = await Promise.all(names.map((name) => handshake(stack.tlsPort, name, { ca })));
      served.forEach((hs, i) => {
        if (!hs.authorized) failed.push(`${names[i]}: ${hs.authorizationError} (${hs.subject})`);
      });
    }
    assert.deepEqual(failed, []);
  });

  test('rotation of the intermediate while handshakes run: 0 failed handshakes', async () => {
    await rotationUnderLoad(stack, ca, 'loc.test');
  });

  test('a stopped daemon: forging stops within 1 s (the grant runs out), each handshake fast; known names unaffected', async () => {
    await realCertificate(stack, 'first.loc.test', ca);
    await stack.daemon.stop();
    const stopped = Date.now();
    let firstDefault: number | undefined;
    for (let i = 0; firstDefault === undefined && Date.now() - stopped < 5_000; i++) {
      const t0 = Date.now();
      const hs = await handshake(stack.tlsPort, `down${i}.loc.test`, { ca, timeoutMs: 15_000 });
      assert.ok(Date.now() - t0 < 1_000, `handshake took ${Date.now() - t0} ms`);
      if (hs.subject === DEFAULT_CN) firstDefault = Date.now();
    }
    assert.ok(firstDefault !== undefined && firstDefault - stopped < 1_000, `the default certificate ${firstDefault === undefined ? 'never' : `${firstDefault - stopped} ms after the stop`}`);
    const later = await handshake(stack.tlsPort, 'later-down.loc.test', { ca });
    assert.equal(later.subject, DEFAULT_CN);
    const known = await handshake(stack.tlsPort, 'first.loc.test', { ca });
    assert.equal(known.authorized, true, known.authorizationError);
    assert.equal(known.issuer, rootCn(ca));
  });
});
