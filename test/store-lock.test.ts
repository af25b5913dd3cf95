import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { StoreLockedError } from '../src/core/errors.js';
import { FsStore } from '../src/store/fs/fs-store.js';
import { spawnFixture } from './fixtures/store/spawn.js';
import { tempDir } from './helpers/temp-dir.js';

const root = tempDir('certd-store-lock-');

let n = 0;
async function dataDir(): Promise<string> {
  const dir = join(root, `d${n++}`);
  await (await FsStore.open(dir)).close();
  return dir;
}

function lockFile(dir: string, key: string): string {
  return join(dir, 'locks', `${key}.lock`);
}

async function ownerOf(dir: string, key: string): Promise<string | undefined> {
  try {
    return (JSON.parse(await readFile(lockFile(dir, key), 'utf8')) as { owner: string }).owner;
  } catch {
    return undefined;
  }
}

/** A lock file as a holder whose lease has run out would leave it. */
async function writeExpired(dir: string, key: string, owner = 'gone-host:1:dead'): Promise<void> {
  await writeFile(lockFile(dir, key), JSON.stringify({ owner, expiresAt: new Date(Date.now() - 1000).toISOString() }));
}

describe('FsStore locks: exclusion', () => {
  test('no lost updates: 20 concurrent lock/increment/release cycles from two instances', async () => {
    const dir = await dataDir();
    const stores = [new FsStore(dir), new FsStore(dir)];
    const counter = join(dir, 'counter');
    await writeFile(counter, '0');
    let inside = 0;
    let maxInside = 0;
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const lock = await stores[i % 2]!.lock('counter', { waitMs: 30_000 });
        inside++;
        maxInside = Math.max(maxInside, inside);
        const value = Number(await readFile(counter, 'utf8'));
        await sleep(Math.random() * 5);
        await writeFile(counter, String(value + 1));
        inside--;
        await lock.release();
      }),
    );
    assert.equal(await readFile(counter, 'utf8'), '20');
    assert.equal(maxInside, 1);
    assert.equal(await ownerOf(dir, 'counter'), undefined);
  });

  test('no lost updates across processes: 3 children × 15 increments', async () => {
    const dir = await dataDir();
    const counter = join(dir, 'counter');
    await writeFile(counter, '0');
    const workers = [0, 1, 2].map(() => spawnFixture('increment.ts', [dir, counter, '15']));
    try {
      await Promise.all(workers.map((w) => w.waitFor(/^done$/, 60_000)));
    } finally {
      await Promise.all(workers.map((w) => w.kill()));
    }
    assert.equal(await readFile(counter, 'utf8'), '45');
  });

  test('tryLock returns undefined while held, the lock after release; release is idempotent', async () => {
    const dir = await dataDir();
    const a = new FsStore(dir);
    const b = new FsStore(dir);
    const held = await a.tryLock('issue/www.example.com');
    assert.ok(held);
    assert.equal(held.key, 'issue/www.example.com');
    assert.equal(await b.tryLock('issue/www.example.com'), undefined);
    assert.equal(await a.tryLock('issue/www.example.com'), undefined, 'not reentrant');
    await held.release();
    await held.release();
    const again = await b.tryLock('issue/www.example.com');
    assert.ok(again);
    await again.release();
  });

  test('a lock file appears complete or not at all (a kill between create and write cannot leave it empty)', async () => {
    const dir = await dataDir();
    const store = new FsStore(dir);
    const path = lockFile(dir, 'issue/watched.test');
    let reading = true;
    const seen: string[] = [];
    const reader = (async () => {
      while (reading) {
        const text = await readFile(path, 'utf8').catch(() => undefined);
        if (text !== undefined) seen.push(text);
      }
    })();
    for (let i = 0; i < 200; i++) {
      const lock = await store.lock('issue/watched.test');
      // Take and release are synchronous: held across a turn of the event loop, the reader can look.
      await new Promise((resolve) => setImmediate(resolve));
      await lock.release();
    }
    reading = false;
    await reader;
    assert.ok(seen.length > 0, 'the reader caught the lock file at least once');
    for (const text of seen) assert.match(text, /"owner":"[^"]+"/);
    assert.deepEqual((await readdir(dirname(path))).filter((f) => f.endsWith('.tmp')), [], 'no temp file left');
    await store.close();
  });

  test('of many contenders for one stale lock, exactly one takes it over', async () => {
    const dir = await dataDir();
    const stores = [new FsStore(dir), new FsStore(dir)];
    for (let round = 0; round < 10; round++) {
      await writeExpired(dir, 'stale');
      const got = await Promise.all(Array.from({ length: 12 }, (_, i) => stores[i % 2]!.tryLock('stale')));
      const winners = got.filter((l) => l !== undefined);
      assert.equal(winners.length, 1, `round ${round}`);
      await winners[0]!.release();
    }
  });
});

describe('FsStore locks: leases and takeover', () => {
  test('a child holding a lock keeps it past its lease; once SIGKILLed on this host the lock frees at once', async () => {
    const dir = await dataDir();
    const store = new FsStore(dir);
    const holder = spawnFixture('hold-lock.ts', [dir, 'job', '600']);
    try {
      const [, owner] = await holder.waitFor(/^locked (.+)$/);
      await sleep(1500);
      assert.equal(await store.tryLock('job'), undefined, 'refreshed lease still held');
      assert.equal(await ownerOf(dir, 'job'), owner);
    } finally {
      await holder.kill();
    }
    // Its lease has not run out, but its process is gone: a restarted daemon need not wait for it.
    const lock = await store.tryLock('job');
    assert.ok(lock, 'a dead local holder does not block');
    assert.match((await ownerOf(dir, 'job'))!, new RegExp(`:${process.pid}:`));
    await lock.release();
  });

  test('a holder on another host keeps its lock until the lease runs out', async () => {
    const dir = await dataDir();
    const store = new FsStore(dir);
    const path = lockFile(dir, 'remote');
    await mkdir(dirname(path), { recursive: true });
    const record = (ms: number) => JSON.stringify({ owner: 'other-host:1:abc', expiresAt: new Date(Date.now() + ms).toISOString() });
    await writeFile(path, record(400));
    assert.equal(await store.tryLock('remote'), undefined);
    await sleep(500);
    const lock = await store.tryLock('remote');
    assert.ok(lock);
    await lock.release();
  });

  test('a holder keeps its lock alive by refreshing the file', async () => {
    const dir = await dataDir();
    const store = new FsStore(dir);
    const lock = await store.lock('refresh', { leaseMs: 300 });
    const first = await readFile(lockFile(dir, 'refresh'), 'utf8');
    await sleep(700);
    assert.notEqual(await readFile(lockFile(dir, 'refresh'), 'utf8'), first);
    assert.equal(await new FsStore(dir).tryLock('refresh', { leaseMs: 300 }), undefined);
    await lock.release();
  });

  test('releasing a lock that was taken over leaves the new owner’s file', async () => {
    const dir = await dataDir();
    const a = new FsStore(dir);
    const b = new FsStore(dir);
    const lockA = await a.lock('k', { leaseMs: 60_000 });
    const ownerA = await ownerOf(dir, 'k');
    // A misses its refreshes (paused process): its lease runs out and B takes over.
    await writeExpired(dir, 'k', ownerA);
    const lockB = await b.tryLock('k');
    assert.ok(lockB);
    const ownerB = await ownerOf(dir, 'k');
    assert.notEqual(ownerB, ownerA);
    await lockA.release();
    assert.equal(await ownerOf(dir, 'k'), ownerB);
    await lockB.release();
    assert.equal(await ownerOf(dir, 'k'), undefined);
  });

  test('a holder whose lock was taken over is warned at its next refresh and stops refreshing', async () => {
    const dir = await dataDir();
    const warnings: Error[] = [];
    const a = new FsStore(dir, { onWarning: (w) => warnings.push(w) });
    const lock = await a.lock('lost', { leaseMs: 300 });
    await writeFile(lockFile(dir, 'lost'), JSON.stringify({ owner: 'other:1:x', expiresAt: new Date(Date.now() + 60_000).toISOString() }));
    await sleep(400);
    assert.equal(warnings.length, 1);
    assert.ok(warnings[0] instanceof StoreLockedError);
    assert.match(warnings[0].message, /lock lost was lost/);
    await lock.release();
    assert.equal(await ownerOf(dir, 'lost'), 'other:1:x');
  });

  test('an unreadable lock file is stale one lease after its last change', async () => {
    const dir = await dataDir();
    const store = new FsStore(dir);
    await writeFile(lockFile(dir, 'garbage'), '');
    assert.equal(await store.tryLock('garbage', { leaseMs: 60_000 }), undefined, 'maybe being written right now');
    const old = new Date(Date.now() - 120_000);
    await utimes(lockFile(dir, 'garbage'), old, old);
    const lock = await store.tryLock('garbage', { leaseMs: 60_000 });
    assert.ok(lock);
    await lock.release();
  });
});

describe('FsStore locks: waiting', () => {
  test('lock() waits for a release', async () => {
    const dir = await dataDir();
    const a = new FsStore(dir);
    const held = await a.lock('w');
    setTimeout(() => void held.release(), 150);
    const start = Date.now();
    const lock = await new FsStore(dir).lock('w', { waitMs: 5000 });
    assert.ok(Date.now() - start >= 100);
    await lock.release();
  });

  test('gives up after waitMs with StoreLockedError naming the holder', async () => {
    const dir = await dataDir();
    const held = await new FsStore(dir).lock('busy');
    const start = Date.now();
    await assert.rejects(new FsStore(dir).lock('busy', { waitMs: 300 }), (err: unknown) => {
      assert.ok(err instanceof StoreLockedError);
      assert.equal(err.code, 'CERTD_E_STORE_LOCKED');
      assert.match(err.message, new RegExp(`busy is still held by .*:${process.pid}:`));
      return true;
    });
    const waited = Date.now() - start;
    assert.ok(waited >= 290 && waited < 1500, `waited ${waited} ms`);
    await held.release();
  });

  test('an abort signal stops the wait with its reason', async () => {
    const dir = await dataDir();
    const held = await new FsStore(dir).lock('abort');
    const other = new FsStore(dir);
    const reason = new Error('shutting down');
    const ac = new AbortController();
    setTimeout(() => ac.abort(reason), 100);
    const start = Date.now();
    await assert.rejects(other.lock('abort', { signal: ac.signal, waitMs: 10_000 }), (err) => err === reason);
    assert.ok(Date.now() - start < 1000);
    await assert.rejects(other.lock('free', { signal: AbortSignal.abort(reason) }), (err) => err === reason);
    await assert.rejects(other.tryLock('free', { signal: AbortSignal.abort(reason) }), (err) => err === reason);
    await assert.rejects(stat(lockFile(dir, 'free')), { code: 'ENOENT' });
    await held.release();
  });

  test('a lease too short to refresh, or a negative wait, is refused', async () => {
    const store = new FsStore(await dataDir());
    await assert.rejects(store.lock('k', { leaseMs: 0 }), RangeError);
    await assert.rejects(store.tryLock('k', { leaseMs: Number.NaN }), RangeError);
    await assert.rejects(store.lock('k', { waitMs: -1 }), RangeError);
  });

  test('close() releases the locks the instance holds', async () => {
    const dir = await dataDir();
    const store = new FsStore(dir);
    await store.lock('c1');
    const c2 = await store.lock('nested/c2');
    await c2.release();
    await store.lock('c3');
    await store.close();
    for (const key of ['c1', 'nested/c2', 'c3']) assert.equal(await ownerOf(dir, key), undefined, key);
  });
});
