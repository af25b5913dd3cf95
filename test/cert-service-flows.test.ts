import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../src/core/log.js';
import { LocalCaIssuer } from '../src/issuers/local-ca/index.js';
import { CertService } from '../src/service/cert-service.js';
import { RenewalRules } from '../src/service/renewal-rules.js';
import { FsStore } from '../src/store/fs/fs-store.js';
import type { Store } from '../src/store/store.js';

/** The real store, with the order of the calls a flow makes on it written down. */
function recording(store: Store, calls: string[]): Store {
  const seen = new Set(['loadCert', 'putPending', 'deletePending', 'lock', 'saveCert']);
  return new Proxy(store, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (seen.has(String(key))) calls.push(String(key));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

describe('CertService: the two flows, in their order (real store and local CA, no HAProxy)', () => {
  let dir: string;
  let fs: FsStore;
  const calls: string[] = [];
  let service: CertService;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'certd-flows-'));
    fs = await FsStore.open(join(dir, 'data'));
    const store = recording(fs, calls);
    service = new CertService({
      store,
      issuers: new Map([['internal', new LocalCaIssuer(fs, { id: 'internal' })]]),
      defaultIssuer: 'internal',
      certDir: join(dir, 'certs'),
      log: silentLogger,
      rules: new RenewalRules({ issuerIds: ['internal'] }),
    });
  });
  after(async () => {
    await service.drain();
    await fs.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('ensure: look → intent → lock → recheck → issue → save → intent removed; a second ensure only looks', async () => {
    calls.length = 0;
    const r = await service.ensure(['flow.test']);
    assert.equal(r.issued, true);
    assert.deepEqual(calls, ['loadCert', 'putPending', 'lock', 'loadCert', 'saveCert', 'deletePending']);
    calls.length = 0;
    assert.equal((await service.ensure(['flow.test'])).issued, false);
    assert.deepEqual(calls, ['loadCert']);
    assert.deepEqual(await fs.listPending(), []);
  });

  test('ensureForHandshake: lock → recheck → issue; the store write comes behind, no crash intent', async () => {
    calls.length = 0;
    const r = await service.ensureForHandshake('hs.test', { approval: Promise.resolve() });
    assert.equal(r.issued, true);
    assert.equal(r.cert.origin, 'ondemand');
    await service.drain();
    assert.deepEqual(calls, ['lock', 'loadCert', 'saveCert']);
    assert.equal((await fs.loadCert('hs.test'))?.meta.serial, r.cert.serial);
    const free = await fs.tryLock('issue/hs.test');
    assert.ok(free, 'the issue lock was released once stored');
    await free.release();
  });

  test('ensureForHandshake: a refused approval stops it — nothing stored, the lock released', async () => {
    calls.length = 0;
    const refused = new Error('ask-refused');
    await assert.rejects(service.ensureForHandshake('no.test', { approval: Promise.reject(refused) }), refused);
    await service.drain();
    assert.deepEqual(calls, ['lock', 'loadCert']);
    assert.equal(await fs.loadCert('no.test'), undefined);
    const free = await fs.tryLock('issue/no.test');
    assert.ok(free, 'the issue lock was released');
    await free.release();
  });

  test('ensureForHandshake finds what ensure stored (under the lock) and issues nothing', async () => {
    const first = await service.ensure(['both.test'], { origin: 'config' });
    const again = await service.ensureForHandshake('both.test');
    assert.equal(again.issued, false);
    assert.equal(again.cert.serial, first.cert.serial);
  });
});
