/**
 * The store contracts, run on every backend: the filesystem and PostgreSQL 15 (a private server,
 * test/helpers/postgres.ts). Three suites per backend: the storage contract (storage.ts: records,
 * fenced writes), the locker contract (locker.ts: leases, fencing tokens, takeover), and the typed
 * store over them (cert-store.ts: what the rest of certd relies on, whatever holds the data).
 * PostgreSQL-only properties (encryption at rest, migrations, outages) follow at the end.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { readFile, writeFile } from 'node:fs/promises';
import { InvalidNameError, StoreLockedError } from '../src/core/errors.js';
import { KeyRing, StoreKeyError } from '../src/crypto/secret-box.js';
import { FsStorage } from '../src/store/fs/fs-storage.js';
import { FsStore } from '../src/store/fs/fs-store.js';
import { compareTokens, FencedWriteError, type Lock, type Locker } from '../src/store/locker.js';
import { migrate, StoreSchemaTooNewError } from '../src/store/postgres/migrations.js';
import { PgDatabase } from '../src/store/postgres/pg-database.js';
import { PgLocker } from '../src/store/postgres/pg-locker.js';
import { PgStorage } from '../src/store/postgres/pg-storage.js';
import { PgStore, StoreUnavailableError, type PgLock } from '../src/store/postgres/pg-store.js';
import type { Storage } from '../src/store/storage.js';
import type { PendingIssue, Store } from '../src/store/store.js';
import { PG_BIN, startPostgres, type Postgres } from './helpers/postgres.js';
import { storedCert } from './helpers/store-fixtures.js';

const KEY_A = randomBytes(32).toString('base64');
const KEY_B = randomBytes(32).toString('base64');
const keys = (text = KEY_A) => KeyRing.parse(text, 'test store.key');

let root: string;
let server: Postgres;
let dbs = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'certd-contract-'));
  server = await startPostgres();
});
after(async () => {
  await server?.destroy();
  await rm(root, { recursive: true, force: true });
});

/** A fresh database on the private server for one test (each backend instance starts empty). */
async function freshDatabase(): Promise<string> {
  const name = `t${dbs++}`;
  await server.psql(`CREATE DATABASE ${name} OWNER certd`);
  return server.url.replace(/\/certd$/, `/${name}`);
}

/** A storage and its locker, as a backend makes them (what the typed layer is built on). */
interface Raw {
  storage: Storage;
  locker: Locker;
  close(): Promise<void>;
}

interface Backend {
  name: string;
  /** Two handles on one new, empty store (two processes or replicas sharing it). */
  open(): Promise<[Store, Store]>;
  /** Two raw handles (storage + locker) on one new, empty store. */
  openRaw(): Promise<[Raw, Raw]>;
  /** Ages a held lease out behind its holder's back (a holder cut off: its refreshes stop landing). */
  expire(store: string, key: string): Promise<void>;
}

/** Where the last openRaw/open put its data: fs dir or postgres URL (for expire). */
let lastPlace = '';

async function fsRaw(dir: string): Promise<Raw> {
  const storage = new FsStorage(dir);
  await storage.ready();
  return { storage, locker: storage.locker, close: async () => (await storage.locker.close(), await storage.close()) };
}

async function pgRaw(url: string): Promise<Raw> {
  const db = new PgDatabase({ url });
  const client = await db.pool.connect();
  try {
    await migrate(client);
  } finally {
    client.release();
  }
  const locker = new PgLocker({ query: db.query, onWarning: () => undefined, unavailable: (m, cause) => new StoreUnavailableError(m, { cause }) });
  return { storage: new PgStorage(db, 'test'), locker, close: async () => (await locker.close(), await db.end()) };
}

const backends: Backend[] = [
  {
    name: 'fs',
    async open() {
      const dir = (lastPlace = await mkdtemp(join(root, 'fs-')));
      return [await FsStore.open(dir), await FsStore.open(dir)];
    },
    async openRaw() {
      const dir = (lastPlace = await mkdtemp(join(root, 'fs-')));
      return [await fsRaw(dir), await fsRaw(dir)];
    },
    async expire(dir, key) {
      const path = join(dir, 'locks', `${key}.lock`);
      const record = JSON.parse(await readFile(path, 'utf8')) as { expiresAt: string };
      record.expiresAt = new Date(Date.now() - 1_000).toISOString();
      await writeFile(path, JSON.stringify(record));
    },
  },
  {
    name: 'postgres',
    async open() {
      const url = (lastPlace = await freshDatabase());
      return [await PgStore.open({ url, keys: keys() }), await PgStore.open({ url, keys: keys() })];
    },
    async openRaw() {
      const url = (lastPlace = await freshDatabase());
      return [await pgRaw(url), await pgRaw(url)];
    },
    async expire(url, key) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`UPDATE certd_locks SET expires_at = now() - interval '1 second' WHERE key = $1`, [key]);
      } finally {
        await c.end();
      }
    },
  },
];

/** Two names each: a list keeps the order of names. */
const cert = (id: string, tag = 'v1') => storedCert(id, tag, [`www.${id.replace(/^_wildcard\./, '')}`]);

function pending(id: string, at: string, renew?: boolean): PendingIssue {
  return { id, names: [id], issuer: 'internal', origin: 'api', requestedAt: at, ...(renew ? { renew } : {}) };
}

async function closeAll(stores: { close(): Promise<void> }[]): Promise<void> {
  await Promise.all(stores.map((s) => s.close()));
}

const sealedKey = (context: string) => keys().seal(`KEY-${context}`, context);
const certRecord = (id: string, tag = 'v1') => {
  const c = cert(id, tag);
  return { meta: { ...c.meta }, body: Buffer.from(c.certPem), secret: sealedKey(`cert:${id}`) };
};

for (const backend of backends) {
  describe(`storage contract: ${backend.name}`, () => {
    test('records of every kind: put, get, list (metadata only), replace, delete; the other handle sees each change', async () => {
      const [a, b] = await backend.openRaw();
      try {
        const c = certRecord('a.example');
        await a.storage.put('cert', 'a.example', c);
        const got = await b.storage.get('cert', 'a.example');
        assert.deepEqual(got?.meta, c.meta);
        assert.equal(got?.body?.toString(), c.body.toString());
        assert.equal(got?.secret?.keyId, c.secret.keyId);
        assert.ok(got?.secret?.data.equals(c.secret.data), 'the secret comes back as it was given (sealed by the typed layer, not the backend)');
        const listed = await b.storage.list('cert');
        assert.deepEqual(listed.map((r) => [r.name, r.meta]), [['a.example', c.meta]]);
        assert.deepEqual(Object.keys(listed[0]!).sort(), ['meta', 'name', 'where'], 'a listing carries no body or secret');
        await b.storage.put('cert', 'a.example', certRecord('a.example', 'v2'));
        assert.equal((await a.storage.get('cert', 'a.example'))?.meta.serial, 'v2-serial');

        const p = { id: 'p.example', names: ['p.example'], issuer: 'internal', origin: 'api', requestedAt: '2025-01-01T00:00:00.000Z' };
        await a.storage.put('pending', 'p.example', { meta: p });
        assert.deepEqual((await b.storage.list('pending')).map((r) => r.meta), [p]);
        const d = { id: 'd.example', issuer: 'le', fqdn: '_acme-challenge.d.example', value: 'v', zone: 'example', writtenAt: '2025-01-01T00:00:00.000Z' };
        await a.storage.put('dns-record', 'd.example', { meta: d });
        assert.deepEqual((await b.storage.get('dns-record', 'd.example'))?.meta, d);

        await a.storage.put('blob', 'local-ca/root.pem', { meta: {}, body: Buffer.from([0, 1, 255]) });
        const secretBlob = sealedKey('blob:acme/account.json');
        await a.storage.put('blob', 'acme/account.json', { meta: {}, secret: secretBlob });
        assert.deepEqual((await b.storage.get('blob', 'local-ca/root.pem'))?.body, Buffer.from([0, 1, 255]));
        assert.ok((await b.storage.get('blob', 'acme/account.json'))?.secret?.data.equals(secretBlob.data));
        assert.deepEqual((await b.storage.list('blob')).map((r) => r.name).sort(), ['acme/account.json', 'local-ca/root.pem']);

        for (const [kind, name] of [['cert', 'a.example'], ['pending', 'p.example'], ['dns-record', 'd.example'], ['blob', 'local-ca/root.pem']] as const) {
          assert.equal(await a.storage.delete(kind, name), true, `${kind} existed`);
          assert.equal(await b.storage.delete(kind, name), false, `${kind} gone`);
          assert.equal(await b.storage.get(kind, name), undefined);
        }
      } finally {
        await closeAll([a, b]);
      }
    });

    test('hostile names are refused with InvalidNameError before any write', async () => {
      const [a, b] = await backend.openRaw();
      try {
        for (const id of ['../etc/passwd', 'A.example', "a'; DROP TABLE certd_certs; --"]) {
          await assert.rejects(a.storage.put('cert', id, certRecord('x.example')), InvalidNameError, id);
          await assert.rejects(a.storage.put('pending', id, { meta: {} }), InvalidNameError, id);
          await assert.rejects(a.storage.delete('dns-record', id), InvalidNameError, id);
        }
        for (const key of ['../x', '/abs', 'a//b', '.hidden/x']) await assert.rejects(a.storage.put('blob', key, { meta: {}, body: Buffer.from('x') }), InvalidNameError, key);
        assert.deepEqual(await b.storage.list('cert'), []);
        assert.deepEqual(await b.storage.list('blob'), []);
      } finally {
        await closeAll([a, b]);
      }
    });

    test('fenced writes: land while the lock is held; refused (FencedWriteError, nothing written) once it was taken over or released', async () => {
      const [a, b] = await backend.openRaw();
      try {
        const first = await a.locker.lock('issue/f.example', { leaseMs: 5_000 });
        await a.storage.put('cert', 'f.example', certRecord('f.example'), { fences: [first] });
        await backend.expire(lastPlace, 'issue/f.example');
        const second = await b.locker.tryLock('issue/f.example', { leaseMs: 5_000 });
        assert.ok(second, 'taken over after the lease ran out');
        // The old holder has not noticed yet (its next refresh is a third of its lease away): the backend refuses anyway.
        await assert.rejects(a.storage.put('cert', 'f.example', certRecord('f.example', 'stale'), { fences: [first] }), (e: Error) => e instanceof FencedWriteError && e.message.includes('issue/f.example'));
        await assert.rejects(a.storage.delete('cert', 'f.example', { fences: [first] }), FencedWriteError);
        await assert.rejects(a.storage.put('blob', 'x', { meta: {}, body: Buffer.from('stale') }, { fences: [first] }), FencedWriteError);
        assert.equal((await b.storage.get('cert', 'f.example'))?.meta.serial, 'v1-serial', 'the refused writes changed nothing');
        assert.equal(await b.storage.get('blob', 'x'), undefined);
        await b.storage.put('cert', 'f.example', certRecord('f.example', 'v2'), { fences: [second] });
        await second.release();
        await assert.rejects(b.storage.put('cert', 'f.example', certRecord('f.example', 'v3'), { fences: [second] }), FencedWriteError);
        assert.equal((await a.storage.get('cert', 'f.example'))?.meta.serial, 'v2-serial');
        await first.release();
      } finally {
        await closeAll([a, b]);
      }
    });
  });

  describe(`locker contract: ${backend.name}`, () => {
    test('every grant carries a fencing token larger than every one before it, across keys and handles', async () => {
      const [a, b] = await backend.openRaw();
      try {
        const tokens: string[] = [];
        for (let i = 0; i < 6; i++) {
          const l = await (i % 2 ? a : b).locker.lock(`k${i % 3}`);
          tokens.push(l.token);
          assert.equal(l.held, true);
          await l.release();
          assert.equal(l.held, false, 'released: no longer held');
        }
        for (let i = 1; i < tokens.length; i++) assert.ok(compareTokens(tokens[i]!, tokens[i - 1]!) > 0, `tokens grow: ${tokens.join(' → ')}`);
      } finally {
        await closeAll([a, b]);
      }
    });

    test('an expired lease is taken over with a larger token; the old holder is told it lost, and its release leaves the new lease', async () => {
      const [a, b] = await backend.openRaw();
      const lost: Error[] = [];
      try {
        const first: Lock = await a.locker.lock('own/h1', { leaseMs: 3_000, onLost: (e) => lost.push(e) });
        await backend.expire(lastPlace, 'own/h1');
        const second = await b.locker.tryLock('own/h1', { leaseMs: 5_000 });
        assert.ok(second, 'taken over after the lease ran out');
        assert.ok(compareTokens(second.token, first.token) > 0, `fencing token grows: ${first.token} → ${second.token}`);
        assert.equal((await a.locker.holder('own/h1'))?.owner.split(':')[1], String(process.pid));
        // The old holder's next refresh (a third of its lease) finds another holder.
        const deadline = Date.now() + 30_000;
        while (first.held && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        assert.equal(first.held, false);
        assert.equal(lost.length, 1, 'onLost told once');
        await first.release();
        assert.equal(await a.locker.tryLock('own/h1'), undefined, 'the stale release did not free the new holder’s lease');
        assert.equal(second.held, true);
        await second.release();
        assert.equal(await a.locker.holder('own/h1'), undefined);
      } finally {
        await closeAll([a, b]);
      }
    });

    test('tryLock: undefined while held elsewhere; lock() waits, gives up after waitMs naming the holder; close() releases', async () => {
      const [a, b] = await backend.openRaw();
      try {
        const held = await a.locker.lock('k', { leaseMs: 60_000 });
        assert.equal(await b.locker.tryLock('k'), undefined);
        await assert.rejects(b.locker.lock('k', { waitMs: 300 }), (err: Error) => err instanceof StoreLockedError && err.message.includes(String(process.pid)));
        const waiting = b.locker.lock('k', { waitMs: 20_000 });
        await a.locker.close();
        assert.equal(held.held, false);
        const got = await waiting;
        assert.ok(compareTokens(got.token, held.token) > 0);
        await got.release();
      } finally {
        await closeAll([a, b]);
      }
    });
  });

  describe(`typed store: ${backend.name}`, () => {
    test('the daemon claim fences every write: once another daemon took the claim over, this one can write nothing', async () => {
      const [a, b] = await backend.open();
      try {
        await a.claimForDaemon(() => undefined);
        await a.saveCert(cert('claim.example'));
        await backend.expire(lastPlace, 'daemon');
        await b.claimForDaemon(() => undefined);
        await assert.rejects(a.saveCert(cert('claim.example', 'stale')), FencedWriteError);
        await assert.rejects(a.putBlob('k', 'stale'), FencedWriteError);
        await assert.rejects(a.deleteCert('claim.example'), FencedWriteError);
        assert.equal((await b.loadCert('claim.example'))?.meta.serial, 'v1-serial');
        await b.saveCert(cert('claim.example', 'v2'));
      } finally {
        await closeAll([a, b]);
      }
    });

    test('a save fenced with the issue lock is refused once that lock was lost', async () => {
      const [a, b] = await backend.open();
      try {
        const lock = await a.lock('issue/i.example', { leaseMs: 5_000 });
        await backend.expire(lastPlace, 'issue/i.example');
        const other = await b.tryLock('issue/i.example');
        assert.ok(other);
        await assert.rejects(a.saveCert(cert('i.example'), { fence: lock }), (e: Error) => e instanceof FencedWriteError && (e as FencedWriteError).code === 'CERTD_E_STORE_FENCED');
        assert.equal(await b.loadCert('i.example'), undefined);
        await b.saveCert(cert('i.example'), { fence: other });
        assert.equal((await a.loadCert('i.example'))?.meta.serial, 'v1-serial');
        await other.release();
        await lock.release();
      } finally {
        await closeAll([a, b]);
      }
    });

    test('certificates: save, load, list sorted by id, update, delete; the other handle sees each change', async () => {
      const [a, b] = await backend.open();
      try {
        assert.equal(await a.loadCert('a.example'), undefined);
        await a.saveCert(cert('b.example'));
        await a.saveCert(cert('a.example'));
        await a.saveCert(cert('_wildcard.c.example'));
        assert.deepEqual(await b.loadCert('a.example'), cert('a.example'));
        assert.deepEqual(
          (await b.listCerts()).map((m) => m.id),
          ['_wildcard.c.example', 'a.example', 'b.example'],
        );
        assert.deepEqual((await b.listCerts())[1], cert('a.example').meta);
        await b.saveCert(cert('a.example', 'v2'));
        assert.equal((await a.loadCert('a.example'))?.meta.serial, 'v2-serial');
        assert.equal((await a.loadCert('a.example'))?.keyPem, cert('a.example', 'v2').keyPem);
        assert.equal(await a.deleteCert('a.example'), true);
        assert.equal(await b.deleteCert('a.example'), false);
        assert.equal(await b.loadCert('a.example'), undefined);
      } finally {
        await closeAll([a, b]);
      }
    });

    test('loadCerts: several at once, keys opened, the absent ones missing; none asked is an empty map; a hostile id is refused', async () => {
      const [a, b] = await backend.open();
      try {
        await a.saveCert(cert('a.example'));
        await a.saveCert(cert('_wildcard.c.example', 'v2'));
        const got = await b.loadCerts(['a.example', 'gone.example', '_wildcard.c.example', 'a.example']);
        assert.deepEqual([...got.keys()].sort(), ['_wildcard.c.example', 'a.example']);
        assert.deepEqual(got.get('a.example'), cert('a.example'));
        assert.deepEqual(got.get('_wildcard.c.example'), cert('_wildcard.c.example', 'v2'));
        assert.deepEqual([...(await b.loadCerts(['a.example'])).keys()], ['a.example'], 'one alone');
        assert.equal((await b.loadCerts([])).size, 0);
        await assert.rejects(b.loadCerts(['a.example', '../etc/passwd']), InvalidNameError);
      } finally {
        await closeAll([a, b]);
      }
    });

    test('pending requests: round trip, oldest first, delete is idempotent', async () => {
      const [a, b] = await backend.open();
      try {
        await a.putPending(pending('late.example', '2025-01-02T00:00:00.000Z', true));
        await a.putPending(pending('early.example', '2025-01-01T00:00:00.000Z'));
        assert.deepEqual(await b.listPending(), [pending('early.example', '2025-01-01T00:00:00.000Z'), pending('late.example', '2025-01-02T00:00:00.000Z', true)]);
        await b.deletePending('early.example');
        await b.deletePending('early.example');
        assert.deepEqual((await a.listPending()).map((p) => p.id), ['late.example']);
      } finally {
        await closeAll([a, b]);
      }
    });

    test('DNS-01 records to remove: round trip, oldest first, delete is idempotent', async () => {
      const [a, b] = await backend.open();
      const rec = (id: string, at: string) => ({ id, issuer: 'le', fqdn: `_acme-challenge.${id}`, value: `v-${id}`, zone: 'example.test', writtenAt: at });
      try {
        await a.putDnsRecord(rec('late.example', '2025-01-02T00:00:00.000Z'));
        await a.putDnsRecord(rec('early.example', '2025-01-01T00:00:00.000Z'));
        assert.deepEqual(await b.listDnsRecords(), [rec('early.example', '2025-01-01T00:00:00.000Z'), rec('late.example', '2025-01-02T00:00:00.000Z')]);
        await b.deleteDnsRecord('early.example');
        await b.deleteDnsRecord('early.example');
        assert.deepEqual((await a.listDnsRecords()).map((r) => r.id), ['late.example']);
        await assert.rejects(a.putDnsRecord(rec('../x', '2025-01-01T00:00:00.000Z')), InvalidNameError);
      } finally {
        await closeAll([a, b]);
      }
    });

    test('blobs: nested keys, strings and buffers, secret or not, missing is undefined', async () => {
      const [a, b] = await backend.open();
      try {
        assert.equal(await a.getBlob('acme/accounts/x.json'), undefined);
        await a.putBlob('acme/accounts/x.json', '{"k":1}', { secret: true });
        await a.putBlob('local-ca/root.pem', Buffer.from([0, 1, 2, 255]));
        assert.equal((await b.getBlob('acme/accounts/x.json'))?.toString(), '{"k":1}');
        assert.deepEqual(await b.getBlob('local-ca/root.pem'), Buffer.from([0, 1, 2, 255]));
        await b.putBlob('local-ca/root.pem', 'replaced');
        assert.equal((await a.getBlob('local-ca/root.pem'))?.toString(), 'replaced');
      } finally {
        await closeAll([a, b]);
      }
    });

    test('hostile ids and keys are refused with InvalidNameError, and nothing is written', async () => {
      const [a, b] = await backend.open();
      try {
        for (const id of ['../etc/passwd', 'A.example', 'a b', '', 'x'.repeat(300), "a'; DROP TABLE certd_certs; --"]) {
          await assert.rejects(a.saveCert(cert(id)), InvalidNameError, id);
          await assert.rejects(a.loadCert(id), InvalidNameError, id);
          await assert.rejects(a.putPending(pending(id, '2025-01-01T00:00:00.000Z')), InvalidNameError, id);
        }
        for (const key of ['../x', '/abs', 'a//b', '.hidden/x']) {
          await assert.rejects(a.putBlob(key, 'x'), InvalidNameError, key);
          await assert.rejects(a.tryLock(key), InvalidNameError, key);
        }
        assert.deepEqual(await b.listCerts(), []);
        assert.deepEqual(await b.listPending(), []);
      } finally {
        await closeAll([a, b]);
      }
    });

    test('locks: no lost update in 20 concurrent lock/increment/release cycles from two handles', async () => {
      const [a, b] = await backend.open();
      try {
        await a.putBlob('counter', '0');
        await Promise.all(
          Array.from({ length: 20 }, async (_, i) => {
            const s = i % 2 ? a : b;
            const l = await s.lock('counter', { waitMs: 120_000 });
            try {
              const v = Number((await s.getBlob('counter'))!.toString());
              await new Promise((r) => setTimeout(r, 2));
              await s.putBlob('counter', String(v + 1));
            } finally {
              await l.release();
            }
          }),
        );
        assert.equal((await a.getBlob('counter'))?.toString(), '20');
      } finally {
        await closeAll([a, b]);
      }
    });

    test('tryLock: undefined while held elsewhere, the lock after release; release twice is fine', async () => {
      const [a, b] = await backend.open();
      try {
        const held = await a.tryLock('issue/x.example');
        assert.ok(held);
        assert.equal(await b.tryLock('issue/x.example'), undefined);
        await held.release();
        await held.release();
        const next = await b.tryLock('issue/x.example');
        assert.ok(next);
        await next.release();
      } finally {
        await closeAll([a, b]);
      }
    });

    test('lock() gives up after waitMs with StoreLockedError naming the holder; an abort stops the wait', async () => {
      const [a, b] = await backend.open();
      try {
        const held = await a.lock('k', { leaseMs: 60_000 });
        await assert.rejects(b.lock('k', { waitMs: 300 }), (err: Error) => err instanceof StoreLockedError && err.message.includes(`still held by`) && err.message.includes(String(process.pid)));
        const ac = new AbortController();
        setTimeout(() => ac.abort(new Error('stopping')), 100);
        await assert.rejects(b.lock('k', { waitMs: 60_000, signal: ac.signal }), /stopping/);
        await held.release();
      } finally {
        await closeAll([a, b]);
      }
    });

    test('a holder keeps its lock past its lease by refreshing; close() releases what a handle holds', async () => {
      const [a, b] = await backend.open();
      try {
        await a.lock('long', { leaseMs: 300 });
        await new Promise((r) => setTimeout(r, 1_000));
        assert.equal(await b.tryLock('long'), undefined, 'still held after 3 leases');
        await a.close();
        const got = await b.lock('long', { waitMs: 5_000 });
        await got.release();
      } finally {
        await closeAll([a, b]);
      }
    });

    test('claimForDaemon: a second daemon on the same store is refused, naming the first', async () => {
      const [a, b] = await backend.open();
      try {
        await a.claimForDaemon(() => undefined);
        await assert.rejects(b.claimForDaemon(() => undefined), (err: Error) => err instanceof StoreLockedError && /in use by another haproxy-certd daemon \(pid \d+ on host/.test(err.message));
        await a.close();
        await b.claimForDaemon(() => undefined);
      } finally {
        await closeAll([a, b]);
      }
    });
  });
}

describe('fs store with a key ring: the typed layer seals, the backend only stores', () => {
  test('keys and secret blobs are sealed in the files, opened on load; without the key ring they do not open', async () => {
    const dir = await mkdtemp(join(root, 'fs-sealed-'));
    const s = await FsStore.open(dir, { keys: keys() });
    try {
      await s.saveCert(cert('sealed.example'));
      await s.putBlob('acme/account.json', 'ACCOUNT-SECRET', { secret: true });
      const file = await readFile(join(dir, 'certs', 'sealed.example.json'), 'utf8');
      assert.ok(!file.includes('v1-key-sealed.example') && !file.includes('PRIVATE KEY'), 'no key in clear');
      assert.match(file, /"keyId": "[0-9a-f]{16}"/);
      assert.ok(!(await readFile(join(dir, 'blobs', 'acme/account.json'))).includes('ACCOUNT-SECRET'));
      assert.equal((await s.loadCert('sealed.example'))?.keyPem, cert('sealed.example').keyPem);
      assert.equal((await s.getBlob('acme/account.json'))?.toString(), 'ACCOUNT-SECRET');
    } finally {
      await s.close();
    }
    const clear = await FsStore.open(dir);
    try {
      await assert.rejects(clear.loadCert('sealed.example'), /sealed .* no key file/);
    } finally {
      await clear.close();
    }
  });
});

describe('postgres store: leases, fencing, keys at rest, schema, outages', () => {
  test('an expired lease is taken over with a larger fencing token; the old holder is told it lost, and its release leaves the new lease', async () => {
    const url = await freshDatabase();
    const lost: Error[] = [];
    const a = await PgStore.open({ url, keys: keys(), onWarning: (e) => lost.push(e) });
    const b = await PgStore.open({ url, keys: keys() });
    try {
      const first = (await a.lock('own/h1', { leaseMs: 5_000 })) as PgLock;
      // The holder is cut off (its refreshes stop reaching the row): age its lease out directly.
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`UPDATE certd_locks SET expires_at = now() - interval '1 second' WHERE key = 'own/h1'`);
      await c.end();
      const second = (await b.tryLock('own/h1', { leaseMs: 5_000 })) as PgLock;
      assert.ok(second, 'taken over after the lease ran out');
      assert.ok(BigInt(second.token) > BigInt(first.token), `fencing token grows: ${first.token} → ${second.token}`);
      // The old holder's next refresh (a third of its lease) finds the row gone.
      const deadline = Date.now() + 30_000;
      while (first.held && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(first.held, false);
      assert.ok(lost.some((e) => /lock own\/h1 \(token \d+\) is lost: it was taken over/.test(e.message)), lost.map((e) => e.message).join('; '));
      await first.release();
      assert.equal(await a.tryLock('own/h1'), undefined, 'the stale release did not free the new holder’s lease');
      assert.equal(second.held, true);
      await second.release();
    } finally {
      await closeAll([a, b]);
    }
  });

  test('a dump holds no private key or secret blob in clear; a wrong key says which key id it needs', async () => {
    const url = await freshDatabase();
    const s = await PgStore.open({ url, keys: keys() });
    const secretBlob = `ACCOUNT-KEY-${randomBytes(8).toString('hex')}`;
    try {
      await s.saveCert(cert('dump.example'));
      await s.putBlob('acme/account.json', secretBlob, { secret: true });
      await s.putBlob('local-ca/root.pem', 'PUBLIC-ROOT');
    } finally {
      await s.close();
    }
    const { stdout: dump } = await promisify(execFile)(join(PG_BIN, 'pg_dump'), ['-h', '127.0.0.1', '-p', String(server.port), '-U', 'postgres', new URL(url).pathname.slice(1)], {
      maxBuffer: 64 << 20,
    });
    // bytea columns are dumped as hex: look for each text both ways.
    const holds = (text: string) => dump.includes(text) || dump.includes(Buffer.from(text).toString('hex'));
    assert.ok(holds('v1-cert'), 'the dump is of the right database (certificates are public)');
    assert.ok(holds('PUBLIC-ROOT'), 'public blobs stay readable');
    assert.ok(!holds('v1-key-dump.example'), 'no private key in clear');
    assert.ok(!holds('PRIVATE KEY'), 'no PEM key header either');
    assert.ok(!holds(secretBlob), 'no secret blob in clear');

    const other = await PgStore.open({ url, keys: keys(KEY_B) });
    try {
      await assert.rejects(other.loadCert('dump.example'), (err: Error) => err instanceof StoreKeyError && /sealed with key [0-9a-f]{16}, which the key file does not hold/.test(err.message));
    } finally {
      await other.close();
    }
    // Rotation's first half: the new key first, the old one still opens what it sealed.
    const both = await PgStore.open({ url, keys: keys(`${KEY_B}\n${KEY_A}\n`) });
    try {
      assert.equal((await both.loadCert('dump.example'))?.keyPem, cert('dump.example').keyPem);
      assert.equal((await both.getBlob('acme/account.json'))?.toString(), secretBlob);
    } finally {
      await both.close();
    }
  });

  test('a sealed key moved to another row does not open (bound to its record)', async () => {
    const url = await freshDatabase();
    const s = await PgStore.open({ url, keys: keys() });
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await s.saveCert(cert('one.example'));
      await s.saveCert(cert('two.example'));
      await c.query(`UPDATE certd_certs SET key_sealed = (SELECT key_sealed FROM certd_certs WHERE id = 'one.example') WHERE id = 'two.example'`);
      await assert.rejects(s.loadCert('two.example'), /does not open with key .*belongs to another record/);
    } finally {
      await c.end();
      await s.close();
    }
  });

  test('the key file: empty or malformed is refused saying how to make one, never echoing the text', () => {
    assert.throws(() => KeyRing.parse('', '/etc/haproxy-certd/store.key'), (e: Error) => e instanceof StoreKeyError && /store\.key holds no key: make one with `openssl rand -base64 32/.test(e.message));
    assert.throws(() => KeyRing.parse('c2hvcnQ=\n', 'k'), (e: Error) => /line 1 is not a base64 32-byte key/.test(e.message) && !e.message.includes('c2hvcnQ'));
    assert.equal(keys(`# comment\n${KEY_A}\n`).currentId, keys().currentId);
  });

  test('replicas starting at once migrate once; a schema newer than the binary is refused naming both versions', async () => {
    const url = await freshDatabase();
    const opened = await Promise.all(Array.from({ length: 4 }, () => PgStore.open({ url, keys: keys() })));
    await closeAll(opened);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      assert.deepEqual((await c.query('SELECT version FROM certd_schema ORDER BY version')).rows, [{ version: 1 }, { version: 2 }]);
      await c.query('INSERT INTO certd_schema (version) VALUES (99)');
    } finally {
      await c.end();
    }
    await assert.rejects(PgStore.open({ url, keys: keys() }), (e: Error) => e instanceof StoreSchemaTooNewError && /version 99, newer than this haproxy-certd knows \(2\)/.test(e.message));
  });

  test('a server that is not there, or a wrong database: a clear error naming host:port, no password shown', async () => {
    const port = server.port + 1; // nothing listens there (freePort picked this one for the server only)
    await assert.rejects(PgStore.open({ url: `postgres://certd:s3cret@127.0.0.1:${port}/certd`, keys: keys(), connectTimeoutMs: 3_000 }), (e: Error) => {
      return e instanceof StoreUnavailableError && e.message.includes(`127.0.0.1:${port}/certd`) && !e.message.includes('s3cret');
    });
    await assert.rejects(PgStore.open({ url: server.url.replace(/\/certd$/, '/nosuchdb'), keys: keys() }), /database "nosuchdb" does not exist/);
  });

  test('the database stopped mid-work: calls fail with StoreUnavailableError, and the same handle works again once it is back', async () => {
    const url = await freshDatabase();
    const warnings: Error[] = [];
    const s = await PgStore.open({ url, keys: keys(), connectTimeoutMs: 3_000, onWarning: (e) => warnings.push(e) });
    try {
      await s.saveCert(cert('before.example'));
      await server.stop();
      await assert.rejects(s.saveCert(cert('during.example')), StoreUnavailableError);
      await assert.rejects(s.listCerts(), (e: Error) => e instanceof StoreUnavailableError && /HAProxy keeps serving what it has/.test(e.message));
      await server.start();
      await s.saveCert(cert('after.example'));
      assert.deepEqual(
        (await s.listCerts()).map((m) => m.id),
        ['after.example', 'before.example'],
      );
    } finally {
      await server.start(); // a no-op when it runs
      await s.close();
    }
  });
});
