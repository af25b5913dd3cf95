import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DaemonClient } from '../src/cli/daemon-client.js';
import { silentLogger } from '../src/core/log.js';
import { parseShowProc, ReloadFallback } from '../src/haproxy/deploy/reload.js';
import { parseReloadAnswer } from '../src/haproxy/runtime/master-cli.js';
import type { IssueResult } from '../src/service/cert-service.js';
import { selfSigned } from './helpers/certs.js';
import { HAPROXY_UNDER_TEST, startHaproxy } from './helpers/haproxy.js';
import { handshake, startStack, type Stack } from './helpers/stack.js';
import { appendFile } from 'node:fs/promises';
import { RuntimeClient } from '../src/haproxy/runtime/client.js';
import { join } from 'node:path';

/** A bundle bigger than one HAProxy CLI buffer (16 KiB): leaf + 30 extra chain certificates. */
async function hugeBundle(name: string): Promise<string> {
  const leaf = await selfSigned(name);
  const filler = await Promise.all(Array.from({ length: 30 }, (_, i) => selfSigned(`filler${i}.chain.test`)));
  const pem = leaf.certPem + filler.map((f) => f.certPem).join('') + leaf.keyPem;
  assert.ok(pem.length > 17_000);
  return pem;
}

test('show proc parsing: current workers and failed reloads', () => {
  const text = `#<PID>          <type>          <reloads>       <uptime>        <version>
7603            master          1 [failed: 2]   0d00h00m02s     2.6.12
# workers
7666            worker          0               0d00h00m01s     2.6.12
# old workers
7616            worker          1               0d00h00m03s     2.6.12
# programs
`;
  assert.deepEqual(parseShowProc(text), { workers: [7666], failedReloads: 2 });
});

describe('what the 2.6 runtime API cannot take: a hitless reload through the master CLI', () => {
  let stack: Stack;
  let api: DaemonClient;
  before(async () => {
    stack = await startStack({}, { reloadMinIntervalMs: 100 }, { master: true });
    api = new DaemonClient(stack.daemon.api.url, stack.daemon.token);
  });
  after(() => stack.stop());

  test('a certificate too large for one CLI buffer is loaded by a reload and served', async () => {
    const pid = await stack.haproxy.workerPid();
    const r = await api.call<IssueResult>('POST', '/import', { cert: await hugeBundle('huge.test') });
    assert.deepEqual(r.deploy?.ok, ['h1'], JSON.stringify(r.deploy));
    assert.equal((await handshake(stack.tlsPort, 'huge.test')).serial, r.cert.serial);
    assert.notEqual(await stack.haproxy.workerPid(), pid, 'served through a reload');
  });

  test('ordinary adds never reload', async () => {
    const pid = await stack.haproxy.workerPid();
    const r = await api.call<IssueResult>('POST', '/certs', { names: ['normal.test'] });
    assert.equal((await handshake(stack.tlsPort, 'normal.test')).serial, r.cert.serial);
    assert.equal(await stack.haproxy.workerPid(), pid);
  });
});

describe('without a master socket the refusal is reported and blocks nothing else', () => {
  let stack: Stack;
  let api: DaemonClient;
  before(async () => {
    // With on-demand, so HAProxy loads known.map.
    stack = await startStack({ issuers: { internal: { type: 'local-ca' } }, onDemand: { issuer: 'internal', allow: ['*.od.test'], maxCertificates: 10 } });
    api = new DaemonClient(stack.daemon.api.url, stack.daemon.token);
  });
  after(() => stack.stop());

  test('the huge certificate fails on h1 with a hint; other certificates still deploy', async () => {
    const r = await api.call<IssueResult>('POST', '/import', { cert: await hugeBundle('huge2.test') });
    assert.equal(r.deploy?.failed[0]?.instance, 'h1');
    assert.match(r.deploy!.failed[0]!.error, /bufsize.*master socket/s);
    const ok = await api.call<IssueResult>('POST', '/certs', { names: ['after-huge.test'] });
    assert.deepEqual(ok.deploy?.ok, ['h1']);
    assert.equal((await handshake(stack.tlsPort, 'after-huge.test')).serial, ok.cert.serial);
    // known.map lists what is served: the refused certificate's name stays out of it.
    const client = new RuntimeClient(`unix:${join(stack.dir, 'admin.sock')}`);
    try {
      const known = (await client.showMap(stack.daemon.deployer.mapPath('known'))).map((e) => e.key);
      assert.ok(known.includes('after-huge.test'), `known.map: ${known.join(', ')}`);
      assert.ok(!known.includes('huge2.test'), 'a refused certificate must not enter known.map');
    } finally {
      client.close();
    }
  });
});

test('a fallback reload of a broken configuration fails typed, with HAProxy 3.x saying why; the old worker keeps serving', async () => {
  const h = await startHaproxy();
  try {
    const pid = await h.haproxy.workerPid();
    await appendFile(h.configFile, 'frontend broken\n  bind 127.0.0.1:1 ssl crt /nonexistent/certd-test.pem\n');
    const reload = new ReloadFallback(h.masterSocket, 'h1', silentLogger, 0);
    await assert.rejects(reload.request('test'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'CERTD_E_HAPROXY_RELOAD_FAILED');
      // 2.6's master answers `reload` with nothing: only `show proc`'s failed count tells.
      if (HAPROXY_UNDER_TEST === '2.6') assert.match(err.message, /see HAProxy's log/);
      else assert.match(err.message, /unable to stat SSL certificate from file '\/nonexistent\/certd-test\.pem'/);
      return true;
    });
    assert.equal((await handshake(h.tlsPort, 'any.test')).serial, h.defaultCert.serial);
    assert.equal(await h.haproxy.workerPid(), pid);
  } finally {
    await h.stop();
  }
});

test('master CLI reload answer: 3.x verdict and alerts; 2.6 empty', () => {
  assert.equal(parseReloadAnswer(''), undefined);
  assert.deepEqual(parseReloadAnswer('Success=1\n--\n[NOTICE]   (15662) : Loading success.\n\n'), { success: true, alerts: [] });
  assert.deepEqual(
    parseReloadAnswer("Success=0\n--\n[ALERT]    (15662) : config : parsing [h.cfg:14] : bad bind.\n[WARNING]  (15662) : Loading failure!\n\n"),
    { success: false, alerts: ['config : parsing [h.cfg:14] : bad bind.'] },
  );
});
