import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, handshake, startStack, type Stack } from './helpers/stack.js';

describe('renewal scheduler with short-lived local-CA certificates, served without a reload', () => {
  let stack: Stack;
  before(async () => {
    // 1-minute certificates renewed 55 s before expiry: due 5 s after issuance.
    stack = await startStack(
      { issuers: { internal: { type: 'local-ca', validity: '1m' } }, renewBefore: '55s', certificates: [{ names: ['short.test'], issuer: 'internal' }] },
      { renewMaxSleepMs: 500 },
    );
  });
  after(() => stack.stop());

  test('renews on schedule; HAProxy serves the new serial; same worker pid', async () => {
    const ca = await stack.rootPem();
    await eventually(async () => (await handshake(stack.tlsPort, 'short.test', { ca })).authorized, 10_000, 'issued from config');
    const first = (await handshake(stack.tlsPort, 'short.test', { ca })).serial;
    const pid = await stack.haproxy.workerPid();
    await eventually(async () => stack.daemon.scheduler.dueTimes().get('short.test')?.source === 'lifetime', 5_000, 'planned');
    await eventually(async () => (await handshake(stack.tlsPort, 'short.test', { ca })).serial !== first, 15_000, 'renewed and served');
    assert.equal(await stack.haproxy.workerPid(), pid);
    // Counted once the renewal finished (files too), a moment after HAProxy serves it.
    const renewed = async () => /certd_renewal_total\{result="ok",trigger="scheduled"\} [1-9]/.test(await (await fetch(`${stack.daemon.api.url}/metrics`)).text());
    await eventually(renewed, 5_000, 'renewal counted');
  });
});
