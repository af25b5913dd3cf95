import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CatalogStore, CertCatalog, type CatalogChange, type PageRequest } from '../src/store/catalog.js';
import type { CertQuery } from '../src/store/cert-query.js';
import type { CertMeta, CertOrigin } from '../src/store/store.js';
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
    catalog.delete('a.test');
    assert.equal(catalog.find('shared.test')?.id, 'b.test', 'a name two had is still found once one goes');
    catalog.delete('b.test');
    assert.equal(catalog.find('shared.test'), undefined);
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

/** Metadata for paging tests: expiry spread so the two orders differ. */
function meta(i: number, o: { origin?: CertOrigin; issuer?: string } = {}): CertMeta {
  const id = `c${String(i).padStart(4, '0')}.page.test`;
  const base = storedCert(id).meta;
  return { ...base, origin: o.origin ?? 'api', issuer: o.issuer ?? 'internal', notAfter: new Date(Date.UTC(2030, 0, 1) + ((i * 7919) % 1000) * 3_600_000).toISOString() };
}

function readAll(catalog: CertCatalog, req: Omit<PageRequest, 'after'>, between?: (pageNo: number) => void): string[] {
  const ids: string[] = [];
  let after: string | undefined;
  let pageNo = 0;
  do {
    const page = catalog.page({ ...req, ...(after === undefined ? {} : { after }) });
    assert.ok(page.certs.length <= req.limit);
    ids.push(...page.certs.map((m) => m.id));
    after = page.next;
    between?.(pageNo++);
  } while (after !== undefined);
  return ids;
}

describe('CertCatalog pages and counts', () => {
  it('pages by name and by expiry visit every certificate once, in order, and the last page has no next', () => {
    const metas = Array.from({ length: 250 }, (_, i) => meta(i));
    const catalog = new CertCatalog([...metas].reverse());
    const byName = readAll(catalog, { limit: 30 });
    assert.deepEqual(byName, metas.map((m) => m.id).sort());
    const byExpiry = readAll(catalog, { limit: 7, order: 'expiry' });
    const expected = [...metas].sort((a, b) => a.notAfter.localeCompare(b.notAfter) || (a.id < b.id ? -1 : 1)).map((m) => m.id);
    assert.deepEqual(byExpiry, expected);
    assert.equal(catalog.page({ limit: 250 }).next, undefined, 'exactly one full page: no empty page after it');
    assert.deepEqual(catalog.page({ limit: 5, after: 'zzz' }), { certs: [] });
  });

  it('a cursor stays stable under inserts and deletes between pages: nothing that stayed is skipped or repeated', () => {
    const catalog = new CertCatalog(Array.from({ length: 100 }, (_, i) => meta(i * 2)));
    let added = 1;
    const seen = readAll(catalog, { limit: 9 }, (pageNo) => {
      // Odd ids land both before and after the cursor; an even one behind the cursor goes away.
      for (let k = 0; k < 5; k++, added += 2) catalog.put(meta((added * 37) % 200 | 1));
      catalog.delete(meta(198 - pageNo * 2).id);
    });
    assert.equal(new Set(seen).size, seen.length, 'no id twice');
    assert.deepEqual(seen, [...seen].sort(), 'still in order');
    const stayed = Array.from({ length: 100 }, (_, i) => meta(i * 2).id).filter((id) => catalog.get(id));
    for (const id of stayed) assert.ok(seen.includes(id), `${id} was there all along and was listed`);
  });

  it('filters by name (substring or glob), issuer, origin and expiresBefore; counts without a scan where it can', () => {
    const metas = Array.from({ length: 60 }, (_, i) => meta(i, { origin: i % 3 === 0 ? 'ondemand' : 'api', issuer: i % 2 === 0 ? 'le' : 'internal' }));
    const catalog = new CertCatalog(metas);
    const ids = (filter: CertQuery) => readAll(catalog, { limit: 4, filter });
    const expect = (test: (m: CertMeta) => boolean) => metas.filter(test).map((m) => m.id).sort();
    assert.deepEqual(ids({ name: '001' }), expect((m) => m.id.includes('001')));
    assert.deepEqual(ids({ name: 'C00?1.PAGE.*' }), expect((m) => /^c00\d1\.page\./.test(m.id)));
    assert.deepEqual(ids({ origin: 'ondemand', issuer: 'le' }), expect((m) => m.origin === 'ondemand' && m.issuer === 'le'));
    const cut = metas[10]!.notAfter;
    assert.deepEqual(ids({ expiresBefore: cut }), expect((m) => m.notAfter < cut));
    assert.equal(catalog.count({ origin: 'ondemand' }), 20);
    assert.equal(catalog.count({ issuer: 'le' }), 30);
    assert.equal(catalog.count({ expiresBefore: cut }), expect((m) => m.notAfter < cut).length);
    assert.equal(catalog.count({ expiresBefore: cut, origin: 'api' }), expect((m) => m.notAfter < cut && m.origin === 'api').length);
    catalog.put({ ...metas[0]!, origin: 'api' });
    catalog.delete(metas[3]!.id);
    assert.equal(catalog.count({ origin: 'ondemand' }), 18, 'counts follow a changed origin and a delete');
    assert.deepEqual(catalog.issuers(), ['internal', 'le']);
    const soonest = catalog.page({ limit: 3, order: 'expiry', filter: { expiresBefore: cut } });
    const bySoonest = [...catalog.all()].filter((m) => m.notAfter < cut).sort((a, b) => a.notAfter.localeCompare(b.notAfter) || (a.id < b.id ? -1 : 1));
    assert.deepEqual(soonest.certs.map((m) => m.id), bySoonest.slice(0, 3).map((m) => m.id));
    assert.ok(soonest.next !== undefined && bySoonest.length > 3);
  });
});
