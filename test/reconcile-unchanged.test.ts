import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DaemonClient } from '../src/cli/daemon-client.js';
import type { InstanceStatus } from '../src/haproxy/deploy/instance.js';
import { RuntimeClient } from '../src/haproxy/runtime/client.js';
import type { IssueResult } from '../src/service/cert-service.js';
import { selfSigned } from './helpers/certs.js';
import { eventually, handshake, startStack, type Stack } from './helpers/stack.js';

/*
 * A periodic pass whose replies are byte-identical to the last one's, with nothing changed on our
 * side, is not compared again (its cost at 100,000 certificates was seconds of daemon CPU); a
 * change made behind the daemon's back through the runtime socket, and a restart, still are.
 */
describe('reconcile: unchanged passes skip the comparison; drift and restarts are still found (real HAProxy)', () => {
  let stack: Stack;
  let api: DaemonClient;
  let runtime: RuntimeClient;
  const names = ['drift-a.test', 'drift-b.test'];
  const serials = new Map<string, string>();

  before(async () => {
    // On-demand on, so the HAProxy config loads known.map (the drift in (b) includes a key of it).
    stack = await startStack(
      { issuers: { internal: { type: 'local-ca' } }, onDemand: { issuer: 'internal', allow: ['*.od.test'], maxCertificates: 10, rateLimit: { perMinute: 60, burst: 10 } } },
      {},
      { reconcileEvery: '1s' },
    );
    api = new DaemonClient(stack.daemon.api.url, stack.daemon.token);
    runtime = new RuntimeClient(`unix:${join(stack.dir, 'admin.sock')}`);
    for (const name of names) {
      const r = await api.call<IssueResult>('POST', '/import', { cert: (await selfSigned(name)).pem });
      assert.deepEqual(r.deploy?.ok, ['h1'], `${name} served: ${JSON.stringify(r.deploy)}`);
      serials.set(name, r.cert.serial);
    }
  });
  after(async () => {
    runtime?.close();
    await stack?.stop();
  });

  const status = (): InstanceStatus => stack.daemon.deployer.status()[0]!;
  /** Waits for the next pass that started after now (passes run every second). */
  const nextPass = async (what: string): Promise<NonNullable<InstanceStatus['lastReconcile']>> => {
    const after = Date.now();
    await eventually(async () => Date.parse(status().lastReconcile?.at ?? '') > after + 5, 30_000, `a reconcile pass after ${what}`);
    return status().lastReconcile!;
  };
  const served = async (name: string) => (await handshake(stack.tlsPort, name)).serial === serials.get(name);

  test('(a) with nothing changed, passes are counted as unchanged, read nothing one by one, and keep every certificate in sync', async () => {
    await eventually(async () => status().lastReconcile?.unchanged === true, 30_000, 'an unchanged pass after the imports');
    const before = status().reconcilesUnchanged!;
    const pass = await nextPass('the first unchanged one');
    assert.equal(pass.unchanged, true, JSON.stringify(pass));
    assert.equal(pass.certsRead, 0);
    assert.ok(status().reconcilesUnchanged! > before, 'the counter moves');
    assert.equal(status().pending, 0, JSON.stringify(status()));
    for (const name of names) assert.ok(await served(name), `${name} still served`);
  });

  test('(b) a crt-list line and a known.map key deleted through the runtime socket are found by the next pass and put back', async () => {
    const list = await runtime.showCrtList(stack.config.haproxy.crtList);
    const line = list.find((e) => e.sni.includes('drift-a.test') || e.path.includes('drift-a.test'));
    assert.ok(line, `drift-a.test in ${JSON.stringify(list.map((e) => e.path))}`);
    const knownMap = stack.daemon.deployer.mapPath('known');
    assert.ok((await runtime.showMap(knownMap)).some((e) => e.key === 'drift-b.test'), 'drift-b.test in known.map');
    await runtime.raw(`del ssl crt-list ${stack.config.haproxy.crtList} ${line.path}`);
    await runtime.raw(`del map ${knownMap} drift-b.test`);
    assert.equal(await served('drift-a.test'), false, 'the deletion took effect (the default certificate answers)');
    await eventually(async () => status().lastReconcile?.unchanged === false, 30_000, 'a full pass after the deletions');
    await eventually(() => served('drift-a.test'), 30_000, 'drift-a.test served again');
    await eventually(async () => (await runtime.showMap(knownMap)).some((e) => e.key === 'drift-b.test'), 30_000, 'drift-b.test back in known.map');
    await eventually(async () => status().lastReconcile?.unchanged === true && status().pending === 0, 30_000, 'unchanged passes again once repaired');
  });

  test('(c) a restarted HAProxy (new worker pid) is compared in full at once, even when its replies read the same', async () => {
    await eventually(async () => status().lastReconcile?.unchanged === true, 30_000, 'a quiet instance');
    const pidBefore = status().pid;
    const full = () => status().reconciles! - status().reconcilesUnchanged!;
    const fullBefore = full();
    await stack.haproxy.restart();
    const pid = await stack.haproxy.workerPid();
    assert.notEqual(pid, pidBefore);
    await eventually(async () => status().pid === pid, 30_000, 'the restarted worker learnt');
    assert.ok(full() > fullBefore, `a full comparison on the new worker (${JSON.stringify(status())})`);
    assert.equal(status().state, 'up');
    for (const name of names) await eventually(() => served(name), 30_000, `${name} served by the restarted HAProxy`);
    await eventually(async () => status().lastReconcile?.unchanged === true && status().pending === 0, 30_000, 'unchanged passes on the new worker');
  });
});
