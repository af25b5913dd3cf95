import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DaemonClient } from '../src/cli/daemon-client.js';
import { readToken } from '../src/daemon/token.js';
import { FsStore } from '../src/store/fs/fs-store.js';
import { spawnCli } from './helpers/cli.js';
import { eventually, freePort } from './helpers/stack.js';
import { stopChild } from './helpers/children.js';
import { tempDir } from './helpers/temp-dir.js';

const dir = tempDir('certd-crash-');

async function startDaemon(port: number) {
  const child = spawnCli(['--config', join(dir, 'certd.yaml'), 'run']);
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  const token = await (async () => {
    await eventually(async () => /daemon started/.test(log), 20_000, `daemon start (log: ${log})`);
    return (await readToken(join(dir, 'data')))!;
  })();
  return { child, client: new DaemonClient(`http://127.0.0.1:${port}`, token), log: () => log };
}

test('kill -9 of the daemon mid-issue leaves a consistent store; the next start finishes the job', async () => {
  const port = await freePort();
  // RSA keys take ~100-300 ms to generate: long enough to kill the daemon in the middle.
  await writeFile(
    join(dir, 'certd.yaml'),
    `dataDir: ./data\nhaproxy: { certDir: ./certs }\nissuers: { internal: { type: local-ca, keyType: rsa-2048 } }\napi: { listen: "127.0.0.1:${port}" }\n`,
  );
  const names = Array.from({ length: 6 }, (_, i) => `crash${i}.test`);
  const first = await startDaemon(port);
  const calls = names.map((n) => first.client.call('POST', '/certs', { names: [n] }).catch((err: Error) => err));
  // Killed once the intents are recorded and before every issuance can have finished.
  const intents = async () => (await readdir(join(dir, 'data', 'pending')).catch(() => [])).filter((f) => f.endsWith('.json')).length;
  await eventually(async () => (await intents()) >= 3, 10_000, 'pending intents');
  first.child.kill('SIGKILL');
  await once(first.child, 'close');
  await Promise.all(calls);

  const warnings: Error[] = [];
  const store = await FsStore.open(join(dir, 'data'), { onWarning: (e) => warnings.push(e) });
  const pendingAtCrash = await store.listPending();
  assert.ok(pendingAtCrash.length > 0, 'the kill should land mid-issue');
  for (const meta of await store.listCerts()) {
    const cert = await store.loadCert(meta.id);
    assert.ok(cert?.certPem.includes('BEGIN CERTIFICATE') && cert.keyPem.includes('PRIVATE KEY'), meta.id);
  }
  assert.deepEqual(warnings, []);

  const second = await startDaemon(port);
  try {
    await eventually(async () => (await store.listPending()).length === 0, 20_000, 'pending finished');
    const ids = (await store.listCerts()).map((m) => m.id).sort();
    for (const p of pendingAtCrash) assert.ok(ids.includes(p.id), `${p.id} was not finished`);
    assert.match(second.log(), /finishing an issue interrupted by a stop/);
  } finally {
    await stopChild(second.child);
    await store.close();
  }
});
