/*
 * The demo's wiring on whichever HAProxy the suite runs (2.6, 3.0, 3.2): the demo's HAProxy config
 * and the demo's daemon config (embedded local CA, on-demand for one suffix, configured names).
 * One name of each kind a user meets in the demo is served as it should be.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DaemonClient } from '../src/cli/daemon-client.js';
import { EMBEDDED_ISSUER } from '../src/daemon/issuers.js';
import type { IssueResult } from '../src/service/cert-service.js';
import { eventually, handshake, startStack, type Stack } from './helpers/stack.js';

const DEFAULT_CN = 'haproxy-certd default certificate';

describe('a demo-equivalent stack: configured, on-demand, issued and removed names', () => {
  let stack: Stack;
  let ca: string;
  let api: DaemonClient;

  before(async () => {
    stack = await startStack({
      issuers: { [EMBEDDED_ISSUER]: { type: 'local-ca', keyType: 'ecdsa-p256', validity: '30d' } },
      onDemand: { issuer: EMBEDDED_ISSUER, allow: ['*.demo.test'], maxCertificates: 1000, maxWait: '5s', rateLimit: { perMinute: 600, burst: 100 } },
      certificates: [{ names: ['app.demo.test', 'api.demo.test'], issuer: EMBEDDED_ISSUER }],
    });
    ca = await stack.rootPem();
    api = new DaemonClient(stack.daemon.api.url, stack.daemon.token);
  });
  after(() => stack.stop());

  test('each kind of name is served correctly by the same worker', async () => {
    const pid = await stack.haproxy.workerPid();
    // Configured: issued by the daemon's catch-up after start.
    await eventually(async () => (await handshake(stack.tlsPort, 'api.demo.test', { ca })).authorized, 15_000, 'the configured name served');
    assert.deepEqual((await handshake(stack.tlsPort, 'app.demo.test', { ca })).san, ['app.demo.test', 'api.demo.test']);

    // On-demand: a never-seen name of the suffix verifies at its first handshake.
    const first = await handshake(stack.tlsPort, 'anything.demo.test', { ca, timeoutMs: 15_000 });
    assert.equal(first.authorized, true, first.authorizationError);
    assert.deepEqual(first.san, ['anything.demo.test']);

    // Issued through the API, outside the on-demand suffix: served when the call returns.
    const issued = await api.call<IssueResult>('POST', '/certs', { names: ['shop.example.test'] });
    const shop = await handshake(stack.tlsPort, 'shop.example.test', { ca });
    assert.equal(shop.serial, issued.cert.serial);

    // Removed: back to the default certificate (outside the suffix, so on-demand does not re-issue it).
    await api.call<IssueResult>('POST', '/certs', { names: ['gone.example.test'] });
    assert.equal((await handshake(stack.tlsPort, 'gone.example.test', { ca })).authorized, true);
    await api.call('DELETE', '/certs/gone.example.test');
    assert.equal((await handshake(stack.tlsPort, 'gone.example.test', { ca })).subject, DEFAULT_CN);
    assert.equal((await handshake(stack.tlsPort, 'unknown.example.test', { ca })).subject, DEFAULT_CN);

    assert.equal(await stack.haproxy.workerPid(), pid, 'no reload');
  });
});
