import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CertEntry } from './entry.js';
import { certWork, mapWork } from './instance.js';
import { RemoteInstance } from './remote-instance.js';

const ACME = '/certs/acme.map';
const KNOWN = '/certs/known.map';

function entry(id: string, serial: string): CertEntry {
  return { id, pemPath: `/certs/${id}.pem`, sha1: 'AA', serial, sni: [id], options: {} };
}

function remote() {
  const desired = new Map<string, CertEntry>();
  const maps = new Map<string, Map<string, string>>([[ACME, new Map()], [KNOWN, new Map()]]);
  return { desired, maps, instance: new RemoteInstance('lb1', undefined, desired, maps, KNOWN) };
}

/** Whether `p` settled within a turn of the event loop (a waiter answered, or still waiting). */
async function settled(p: Promise<void>): Promise<boolean> {
  return Promise.race([p.then(() => true), new Promise<boolean>((r) => setImmediate(() => r(false)))]);
}

test('a waiter is answered when the owner announces the desired version, not an older one', async () => {
  const { desired, instance } = remote();
  desired.set('a.test', entry('a.test', '02'));
  const waiting = instance.sync([certWork('a.test')]);
  instance.noteServed('replica-b', [[certWork('a.test'), '01']]);
  assert.equal(await settled(waiting), false);
  instance.noteServed('replica-b', [[certWork('a.test'), '02']]);
  assert.equal(await settled(waiting), true);
  assert.equal(instance.status().owner, 'replica-b');
});

test('a late waiter for a removal finds the announcement; known.map keys are never waited for', async () => {
  const { instance } = remote();
  instance.noteServed('replica-b', [[certWork('gone.test'), '']]);
  assert.equal(await settled(instance.sync([certWork('gone.test')])), true);
  assert.equal(await settled(instance.sync([mapWork(KNOWN, 'x.test')])), true);
});

test('announced absences are kept for the newest 10,000 keys only: token churn stays bounded', async () => {
  const { instance } = remote();
  for (let i = 0; i < 10_500; i++) instance.noteServed('replica-b', [[mapWork(ACME, `token-${i}`), '']]);
  // The newest are still known absent (a late waiter is answered at once); the oldest were let go.
  assert.equal(await settled(instance.sync([mapWork(ACME, 'token-10499')])), true);
  const oldest = instance.sync([mapWork(ACME, 'token-0')]);
  assert.equal(await settled(oldest), false);
  instance.noteServed('replica-b', [[mapWork(ACME, 'token-0'), '']]);
  assert.equal(await settled(oldest), true);
});

test('a stopped remote instance refuses new waiters and answers old ones with an error', async () => {
  const { desired, instance } = remote();
  desired.set('a.test', entry('a.test', '02'));
  const waiting = instance.sync([certWork('a.test')]);
  await instance.stop();
  await assert.rejects(waiting, /daemon stopping/);
  await assert.rejects(instance.sync([certWork('a.test')]), /daemon stopping/);
});
