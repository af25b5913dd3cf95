import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { removeFileDurable, writeFileAtomic } from '../src/core/atomic-write.js';
import { InvalidNameError, StoreCorruptError } from '../src/core/errors.js';
import { FsStore } from '../src/store/fs/fs-store.js';
import type { PendingIssue, StoredCert } from '../src/store/store.js';
import { tempDir } from './helpers/temp-dir.js';
import { storedCert } from './helpers/store-fixtures.js';

const root = tempDir('certd-store-');

let n = 0;
/** A fresh data directory path (not created) per test. */
function dataDir(): string {
  return join(root, `d${n++}`);
}

const cert = storedCert;

async function mode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

/** Every file (not directory) under dir, relative. */
async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(join(e.parentPath ?? e.path, e.name).slice(dir.length + 1));
  }
  return out.sort();
}

describe('FsStore certificates', () => {
  test('save, load, list, update and delete round trip', async () => {
    const store = new FsStore(dataDir());
    const a = cert('www.example.com');
    const w = cert('_wildcard.apps.example.com');
    await store.saveCert(a);
    await store.saveCert(w);
    assert.deepEqual(await store.loadCert('www.example.com'), a);
    assert.deepEqual(await store.loadCert('_wildcard.apps.example.com'), w);
    assert.deepEqual(await store.listCerts(), [w.meta, a.meta]);

    const a2 = cert('www.example.com', 'v2');
    await store.saveCert(a2);
    assert.deepEqual(await store.loadCert('www.example.com'), a2);

    assert.equal(await store.deleteCert('www.example.com'), true);
    assert.equal(await store.loadCert('www.example.com'), undefined);
    assert.equal(await store.deleteCert('www.example.com'), false);
    assert.deepEqual(await store.listCerts(), [w.meta]);
    assert.equal(await store.loadCert('missing.example.com'), undefined);
  });

  test('stores only the bundle fields, not extras the caller carries', async () => {
    const dir = dataDir();
    const store = new FsStore(dir);
    const a = { ...cert('a.example.com'), issuerDn: 'CN=x', password: 'nope' } as StoredCert;
    await store.saveCert(a);
    const raw = JSON.parse(await readFile(join(dir, 'certs', 'a.example.com.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(raw).sort(), ['certPem', 'format', 'keyPem', 'meta']);
    assert.deepEqual(await store.loadCert('a.example.com'), cert('a.example.com'));
  });

  test('cert files, secret blobs 0600; public blobs 0644; directories 0700', async () => {
    const dir = dataDir();
    const store = await FsStore.open(dir);
    await store.saveCert(cert('a.example.com'));
    await store.putPending({ id: 'a.example.com', names: ['a.example.com'], issuer: 'x', origin: 'api', requestedAt: 't' });
    await store.putBlob('local-ca/internal/root.key', 'secret', { secret: true });
    await store.putBlob('local-ca/internal/root.pem', 'public');
    assert.equal(await mode(join(dir, 'certs', 'a.example.com.json')), 0o600);
    assert.equal(await mode(join(dir, 'blobs', 'local-ca/internal/root.key')), 0o600);
    assert.equal(await mode(join(dir, 'blobs', 'local-ca/internal/root.pem')), 0o644);
    for (const d of ['certs', 'pending', 'blobs', 'locks', 'blobs/local-ca', 'blobs/local-ca/internal']) {
      assert.equal(await mode(join(dir, d)), 0o700, d);
    }
  });

  test('refuses to save a certificate it could not read back', async () => {
    const store = new FsStore(dataDir());
    const bad = cert('a.example.com');
    (bad.meta as { names: unknown }).names = 'a.example.com';
    await assert.rejects(store.saveCert(bad), StoreCorruptError);
    assert.equal(await store.loadCert('a.example.com'), undefined);
  });
});

describe('FsStore corrupt and leftover files', () => {
  test('a corrupt file: loadCert names it, listCerts skips it and warns', async () => {
    const dir = dataDir();
    const warnings: Error[] = [];
    const store = new FsStore(dir, { onWarning: (w) => warnings.push(w) });
    await store.saveCert(cert('good.example.com'));
    await store.saveCert(cert('swapped.example.com'));
    const certs = join(dir, 'certs');
    await writeFile(join(certs, 'bad.example.com.json'), '{"format":1,"meta":');
    await writeFile(join(certs, 'shape.example.com.json'), '{"format":1,"certPem":1}');
    // A file renamed by hand: its content is another certificate.
    await writeFile(join(certs, 'other.example.com.json'), await readFile(join(certs, 'swapped.example.com.json')));

    for (const id of ['bad.example.com', 'shape.example.com', 'other.example.com']) {
      await assert.rejects(store.loadCert(id), (err: unknown) => {
        assert.ok(err instanceof StoreCorruptError);
        assert.equal(err.code, 'CERTD_E_STORE_CORRUPT');
        assert.ok(err.message.includes(join(certs, `${id}.json`)), err.message);
        return true;
      });
    }
    assert.deepEqual(
      (await store.listCerts()).map((m) => m.id),
      ['good.example.com', 'swapped.example.com'],
    );
    assert.equal(warnings.length, 3);
    assert.ok(warnings.every((w) => w instanceof StoreCorruptError));
  });

  test('crash leftovers: ignored by lists, old ones removed on open, young ones kept', async () => {
    const dir = dataDir();
    await (await FsStore.open(dir)).saveCert(cert('a.example.com'));
    const old = join(dir, 'certs', '.b.example.com.json.0123456789abcdef.tmp');
    const young = join(dir, 'certs', '.c.example.com.json.fedcba9876543210.tmp');
    const oldBlob = join(dir, 'blobs', '.k.0123456789abcdef.tmp');
    const oldAside = join(dir, 'locks', '.x.lock.break');
    for (const f of [old, young, oldBlob, oldAside]) await writeFile(f, '{"format":1,"half');
    const hourAgo = new Date(Date.now() - 3_600_000);
    for (const f of [old, oldBlob, oldAside]) await utimes(f, hourAgo, hourAgo);

    const warnings: Error[] = [];
    const store = await FsStore.open(dir, { onWarning: (w) => warnings.push(w) });
    assert.deepEqual(await files(dir), ['certs/.c.example.com.json.fedcba9876543210.tmp', 'certs/a.example.com.json']);
    assert.deepEqual((await store.listCerts()).map((m) => m.id), ['a.example.com']);
    assert.deepEqual(warnings, []);
  });
});

describe('FsStore pending and blobs', () => {
  test('pending round trip, oldest first', async () => {
    const store = new FsStore(dataDir());
    const p = (id: string, requestedAt: string): PendingIssue => ({ id, names: [id], issuer: 'le', origin: 'ondemand', requestedAt });
    await store.putPending(p('b.example.com', '2025-01-02T00:00:00.000Z'));
    await store.putPending(p('a.example.com', '2025-01-03T00:00:00.000Z'));
    await store.putPending(p('c.example.com', '2025-01-01T00:00:00.000Z'));
    assert.deepEqual(
      (await store.listPending()).map((x) => x.id),
      ['c.example.com', 'b.example.com', 'a.example.com'],
    );
    await store.deletePending('b.example.com');
    await store.deletePending('b.example.com');
    assert.deepEqual((await store.listPending()).map((x) => x.id), ['c.example.com', 'a.example.com']);
  });

  test('blobs: nested keys, strings and buffers, missing is undefined', async () => {
    const store = new FsStore(dataDir());
    const bin = Buffer.from([0, 1, 2, 255]);
    await store.putBlob('acme/accounts/le/account.json', '{"a":1}');
    await store.putBlob('local-ca/internal/root.key', bin, { secret: true });
    assert.equal((await store.getBlob('acme/accounts/le/account.json'))?.toString(), '{"a":1}');
    assert.deepEqual(await store.getBlob('local-ca/internal/root.key'), bin);
    assert.equal(await store.getBlob('local-ca/internal/missing'), undefined);
    assert.equal(await store.getBlob('local-ca'), undefined);
    assert.equal(await store.getBlob('local-ca/internal/root.key/deeper'), undefined);
    await store.putBlob('local-ca/internal/root.key', 'v2', { secret: true });
    assert.equal((await store.getBlob('local-ca/internal/root.key'))?.toString(), 'v2');
  });
});

describe('FsStore hostile ids and keys', () => {
  const badIds = ['../x', 'a/b', 'x y', '', 'a'.repeat(300), 'a\0b', '.', '..', '/etc/passwd', 'A.example.com', '-a.com', '*.example.com', 'a..b', 'a.com.'];
  const badKeys = ['../x', '/abs', 'a//b', 'a/../b', 'a/./b', 'x y', '', 'k'.repeat(300), 'a\0b', '.hidden', 'a/.tmp', 'a\\b', 'a/', 'A'];

  test('are rejected with InvalidNameError and nothing is written', async () => {
    const dir = dataDir();
    const store = new FsStore(dir);
    const pending = (id: string): PendingIssue => ({ id, names: [], issuer: 'x', origin: 'api', requestedAt: 't' });
    for (const id of badIds) {
      for (const call of [
        () => store.loadCert(id),
        () => store.saveCert(cert(id)),
        () => store.deleteCert(id),
        () => store.putPending(pending(id)),
        () => store.deletePending(id),
      ]) {
        await assert.rejects(call(), InvalidNameError, JSON.stringify(id));
      }
    }
    for (const key of badKeys) {
      for (const call of [
        () => store.getBlob(key),
        () => store.putBlob(key, 'x'),
        () => store.lock(key, { waitMs: 0 }),
        () => store.tryLock(key),
      ]) {
        await assert.rejects(call(), InvalidNameError, JSON.stringify(key));
      }
    }
    await assert.rejects(stat(dir), { code: 'ENOENT' });
  });

  test('the error has a stable code and a usable message', async () => {
    const store = new FsStore(dataDir());
    await assert.rejects(store.loadCert('../etc/passwd'), (err: unknown) => {
      assert.ok(err instanceof InvalidNameError);
      assert.equal(err.code, 'CERTD_E_INVALID_NAME');
      assert.match(err.message, /certId/);
      return true;
    });
  });
});

describe('writeFileAtomic', () => {
  test('sets the exact mode whatever the umask, replaces the target, leaves no temp file', async () => {
    const dir = join(root, 'aw1');
    await mkdir(dir);
    const target = join(dir, 'crt-list.txt');
    const previous = process.umask(0o077);
    try {
      await writeFileAtomic(target, 'one', { mode: 0o644 });
    } finally {
      process.umask(previous);
    }
    assert.equal(await mode(target), 0o644);
    await writeFileAtomic(target, 'two');
    assert.equal(await readFile(target, 'utf8'), 'two');
    assert.equal(await mode(target), 0o600);
    assert.deepEqual(await readdir(dir), ['crt-list.txt']);
  });

  test('on failure the target is untouched and the temp file removed', async () => {
    const dir = join(root, 'aw2');
    await mkdir(join(dir, 'target-is-a-dir'), { recursive: true });
    await assert.rejects(writeFileAtomic(join(dir, 'target-is-a-dir'), 'x'));
    assert.deepEqual(await readdir(dir), ['target-is-a-dir']);
    await assert.rejects(writeFileAtomic(join(dir, 'no-such-dir', 'f'), 'x'), { code: 'ENOENT' });
  });

  test('removeFileDurable: true when removed, false when missing', async () => {
    const dir = join(root, 'aw3');
    await mkdir(dir);
    await writeFile(join(dir, 'f'), 'x');
    assert.equal(await removeFileDurable(join(dir, 'f')), true);
    assert.equal(await removeFileDurable(join(dir, 'f')), false);
  });

  test('concurrent writers to one path: the result is one of them, whole', async () => {
    const dir = join(root, 'aw4');
    await mkdir(dir);
    const target = join(dir, 'f');
    const contents = Array.from({ length: 20 }, (_, i) => String(i).repeat(10_000 + i));
    await Promise.all(contents.map((c) => writeFileAtomic(target, c)));
    assert.ok(contents.includes(await readFile(target, 'utf8')));
    assert.deepEqual(await readdir(dir), ['f']);
  });
});
