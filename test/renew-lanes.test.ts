import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DaemonClient } from '../src/cli/daemon-client.js';
import { startPebble, type TestPebble } from './helpers/pebble.js';
import { freePort } from './helpers/ports.js';
import { eventually, handshake, startStack, type Stack } from './helpers/stack.js';

describe('renewal lanes: a real Pebble (12 s certificates) and the local CA (1 min) side by side', () => {
  let pebble: TestPebble;
  let stack: Stack;
  let api: DaemonClient;
  const serial = async (id: string) => (await stack.daemon.store.loadCert(id))?.meta.serial;
  const metrics = async () => (await fetch(`${stack.daemon.api.url}/metrics`)).text();

  before(async () => {
    const httpPort = await freePort();
    pebble = await startPebble({ httpPort, validitySeconds: 12 });
    const caBundle = join(pebble.dir, 'pebble-tls.pem');
    await writeFile(caBundle, pebble.tlsCaPem);
    const acme = { type: 'acme', directory: pebble.directoryUrl, caBundle, challenge: 'http-01', email: 'ops@example.com' } as const;
    stack = await startStack(
      {
        issuers: {
          // One scheduled order per hour: after its first renewal this issuer is out of budget.
          le: { ...acme, rateLimit: { orders: 1, per: '1h' } },
          le2: acme,
          // The shortest the local CA signs: renewed 30–40 s after issue.
          internal: { type: 'local-ca', validity: '1m' },
        },
      },
      { renewMaxSleepMs: 300, renewBackoff: { baseMs: 500, capMs: 1_000 } },
      { acmeHttpPort: httpPort },
    );
    api = new DaemonClient(stack.daemon.api.url, stack.daemon.token);
  });
  after(async () => {
    await stack?.stop();
    await pebble?.stop();
  });

  test('an ACME issuer out of budget waits (shortfall reported) while the local CA keeps renewing', async () => {
    await api.call('POST', '/certs', { names: ['limited.acme.test'], issuer: 'le' });
    await api.call('POST', '/certs', { names: ['local.test'], issuer: 'internal' });
    const issued = await serial('limited.acme.test');
    await eventually(async () => (await serial('limited.acme.test')) !== issued, 30_000, 'first scheduled renewal (the one order of the budget)');
    const renewed = await serial('limited.acme.test');
    await eventually(async () => (stack.daemon.scheduler.laneStats().get('le')?.waiting ?? 0) >= 1, 30_000, 'the next renewal waiting on the budget');
    await eventually(async () => /certd_renewal_budget_shortfall\{issuer="le"\} 1/.test(await metrics()), 10_000, 'shortfall reported');
    const local = await serial('local.test');
    await eventually(async () => (await serial('local.test')) !== local, 60_000, 'local CA renewed while le waits');
    assert.ok((stack.daemon.scheduler.laneStats().get('le')?.waiting ?? 0) >= 1, 'le still waiting on its budget');
    assert.equal(await serial('limited.acme.test'), renewed, 'no order beyond the budget');
    // Served once pushed (the store has it first; a 1-minute certificate may even renew again meanwhile).
    const ca = await stack.rootPem();
    await eventually(async () => (await handshake(stack.tlsPort, 'local.test', { ca })).serial === (await serial('local.test')), 15_000, 'the local renewal served (handshake serial = stored serial)');
  });

  test('a failed renewal is retried; one cut off by a daemon stop is done by the next daemon', async () => {
    await api.call('POST', '/certs', { names: ['retry.acme.test'], issuer: 'le2' });
    const issued = await serial('retry.acme.test');
    await pebble.stopCa();
    try {
      await eventually(async () => (stack.daemon.scheduler.dueTimes().get('retry.acme.test')?.attempts ?? 0) >= 2, 30_000, 'renewal failed and retried while the CA is down');
      assert.equal(await serial('retry.acme.test'), issued, 'nothing stored while failing');
      await stack.daemon.stop();
    } finally {
      await pebble.startCa();
    }
    await stack.restartDaemon();
    api = new DaemonClient(stack.daemon.api.url, stack.daemon.token);
    await eventually(async () => (await serial('retry.acme.test')) !== issued, 30_000, 'renewed by the restarted daemon');
    const stored = await serial('retry.acme.test');
    await eventually(async () => (await handshake(stack.tlsPort, 'retry.acme.test')).serial === stored || (await serial('retry.acme.test')) !== stored, 15_000, 'the renewal is served');
  });
});
