import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { FsStore } from '../src/store/fs/fs-store.js';
import { spawnFixture } from './fixtures/store/spawn.js';
import { storedCert } from './helpers/store-fixtures.js';
import { tempDir } from './helpers/temp-dir.js';

const dir = tempDir('certd-store-index-');

/** What is stored, read straight from the certificate files (not through any index): id → serial. */
async function onDisk(dataDir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of await readdir(join(dataDir, 'certs'))) {
    if (!f.endsWith('.json')) continue;
    const v = JSON.parse(await readFile(join(dataDir, 'certs', f), 'utf8')) as { meta: { id: string; serial: string } };
    out.set(v.meta.id, v.meta.serial);
  }
  return out;
}

async function listed(dataDir: string, warnings: Error[] = []): Promise<Map<string, string>> {
  const store = new FsStore(dataDir, { onWarning: (w) => warnings.push(w) });
  try {
    return new Map((await store.listCerts()).map((m) => [m.id, m.serial]));
  } finally {
    await store.close();
  }
}

describe('FsStore metadata index', () => {
  it('a writer SIGKILLed at random moments while rewriting the index: a restart lists exactly the stored certificates', async (t) => {
    const data = join(dir, 'crash');
    const seedStore = await FsStore.open(data);
    for (let i = 0; i < 400; i += 2) await seedStore.saveCert(storedCert(`c${i}.index.test`, 'seed'));
    await seedStore.close();
    let indexWritten = 0;
    for (let round = 0; round < 12; round++) {
      const writer = spawnFixture('index-loop.ts', [data, String(round + 1)]);
      try {
        await writer.waitFor(/^op \d+$/);
        await sleep(Math.random() * 60);
      } finally {
        await writer.kill();
      }
      const index = await readFile(join(data, 'index', 'certs.json'), 'utf8').catch(() => undefined);
      if (index !== undefined) {
        JSON.parse(index); // the old or the new index, whole: never a torn one
        indexWritten++;
      }
      const warnings: Error[] = [];
      assert.deepEqual(await listed(data, warnings), await onDisk(data), `round ${round}: the listing is the certificate files, exactly`);
      assert.deepEqual(warnings, []);
    }
    assert.ok(indexWritten > 0, 'the index was written at least once');
    t.diagnostic(`index present after ${indexWritten} of 12 kills`);
  });

  it('a file changed by another writer (same size, index not told) is read again; an unreadable index is rebuilt with a warning', async () => {
    const data = join(dir, 'stale');
    const a = await FsStore.open(data, { indexDelayMs: 0 });
    await a.saveCert(storedCert('x.index.test', 'v1'));
    await a.saveCert(storedCert('y.index.test', 'v1'));
    assert.equal((await a.listCerts()).length, 2);
    await a.close(); // index written
    // Another process (no index in memory) replaces a file with one of the same size, and adds one.
    const b = new FsStore(data);
    await b.saveCert(storedCert('x.index.test', 'v2'));
    await b.saveCert(storedCert('z.index.test', 'v1'));
    await b.deleteCert('y.index.test');
    assert.deepEqual(await listed(data), new Map([['x.index.test', 'v2-serial'], ['z.index.test', 'v1-serial']]));
    await writeFile(join(data, 'index', 'certs.json'), '{"format":1,"certs":');
    const warnings: Error[] = [];
    assert.deepEqual(await listed(data, warnings), await onDisk(data));
    assert.match(warnings.map((w) => w.message).join('\n'), /index .* is unreadable .*rebuilding it/);
    assert.deepEqual(JSON.parse(await readFile(join(data, 'index', 'certs.json'), 'utf8')).format, 1, 'rebuilt at close');
  });
});
