import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CatalogStore, CertCatalog, type CatalogChange } from '../src/store/catalog.js';
import { FsStore } from '../src/store/fs/fs-store.js';
import { storedCert } from './helpers/store-fixtures.js';
import { tempDir } from './helpers/temp-dir.js';

const dir = tempDir('certd-catalog-');

describe('CertCatalog', () => {
  it('finds by id, then by any name (first id wins), sorted by id', () => {
    const catalog = new CertCatalog([storedCert('b.test', 'v1', ['shared.test']).meta, storedCert('a.test', 'v1', ['shared.test']).meta]);
    assert.equal(catalog.size, 2);
    assert.equal(catalog.find('b.test')?.id, 'b.test');
    assert.equal(catalog.find('shared.test')?.id, 'a.test');
    assert.equal(catalog.find('none.test'), undefined);
    assert.deepEqual(catalog.all().map((m) => m.id), ['a.test', 'b.test']);
  });

  it('put replaces the old names; delete forgets them; listeners hear each change once', () => {
    const catalog = new CertCatalog([storedCert('a.test', 'v1', ['old.test']).meta]);
    const heard: CatalogChange[] = [];
    const stop = catalog.onChange((c) => heard.push(c));
    catalog.put(storedCert('a.test', 'v2', ['new.test']).meta);
    assert.equal(catalog.find('old.test'), undefined);
    assert.equal(catalog.find('new.test')?.serial, 'v2-serial');
    catalog.delete('a.test');
    catalog.delete('a.test');
    stop();
    catalog.put(storedCert('c.test').meta);
    assert.deepEqual(heard.map((c) => [c.id, c.meta?.serial]), [['a.test', 'v2-serial'], ['a.test', undefined]]);
    assert.equal(catalog.count((m) => m.id === 'c.test'), 1);
  });
});

describe('CatalogStore over FsStore', () => {
  it('loads what is stored, and keeps the catalog in step with saves and deletes', async () => {
    const path = join(dir, 'data');
    const fs = await FsStore.open(path);
    await fs.saveCert(storedCert('one.test'));
    const store = await CatalogStore.open(fs);
    try {
      assert.deepEqual(store.catalog.all().map((m) => m.id), ['one.test']);
      await store.saveCert(storedCert('two.test'));
      assert.equal(store.catalog.get('two.test')?.serial, 'v1-serial');
      assert.equal(await store.deleteCert('one.test'), true);
      assert.deepEqual((await store.listCerts()).map((m) => m.id), ['two.test']);
      // The store is the truth: a fresh load sees the same set.
      assert.deepEqual((await fs.listCerts()).map((m) => m.id), ['two.test']);
      assert.equal((await store.loadCert('two.test'))?.meta.id, 'two.test');
    } finally {
      await store.close();
    }
  });

  it('a failed save leaves the catalog as it was', async () => {
    const fs = await FsStore.open(join(dir, 'data-2'));
    const store = await CatalogStore.open(fs);
    try {
      const broken = storedCert('bad.test');
      (broken.meta as { serial: unknown }).serial = 42; // the store refuses a malformed record
      await assert.rejects(store.saveCert(broken));
      assert.equal(store.catalog.get('bad.test'), undefined);
    } finally {
      await store.close();
    }
  });
});
