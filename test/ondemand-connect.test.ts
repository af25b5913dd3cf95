/*
 * The on-demand Lua's connect bound is HAProxy's CERTD_ONDEMAND_CONNECT_MS when set (for a daemon
 * on another host). Its own file: the variable reaches HAProxy through this process's environment.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HAPROXY_UNDER_TEST } from './helpers/haproxy.js';
import { handshake, startStack, type Stack } from './helpers/stack.js';

const CONNECT_MS = 400;

describe('on-demand with CERTD_ONDEMAND_CONNECT_MS in HAProxy\'s environment', () => {
  let stack: Stack;

  before(async () => {
    process.env.CERTD_ONDEMAND_CONNECT_MS = String(CONNECT_MS);
    stack = await startStack({
      issuers: { internal: { type: 'local-ca' } },
      onDemand: { issuer: 'internal', allow: ['*.far.test'], maxCertificates: 10, maxWait: '5s' },
    });
  });
  after(() => stack.stop());

  test('the bound is the one set: still served while the daemon is up; a stopped daemon is refused after it', async () => {
    const ca = await stack.rootPem();
    assert.equal((await handshake(stack.tlsPort, 'up.far.test', { ca, timeoutMs: 15_000 })).authorized, true);
    await stack.daemon.stop();
    const t0 = Date.now();
    const served = await handshake(stack.tlsPort, 'down.far.test', { ca, timeoutMs: 15_000 });
    const waited = Date.now() - t0;
    assert.equal(served.subject, 'haproxy-certd default certificate');
    if (HAPROXY_UNDER_TEST === '2.6') {
      // 2.6 fails a refused connect at once, whatever the bound.
      assert.ok(waited < 1_000, `waited ${waited} ms`);
    } else {
      // 3.x retries 3 times, each after the bound: the configured one, not the 100 ms default.
      assert.ok(waited >= 3 * CONNECT_MS - 50, `waited ${waited} ms, expected ≥ 3 × ${CONNECT_MS} ms`);
    }
  });
});
