import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { configFromObject } from '../src/config/load.js';
import { silentLogger } from '../src/core/log.js';
import { CertService } from '../src/service/cert-service.js';
import { RenewalRules } from '../src/service/renewal-rules.js';
import { createSources, DirectorySource, HttpSource, ServiceSink, type ImportTarget } from '../src/sources/index.js';
import { FsStore } from '../src/store/fs/fs-store.js';
import { selfSigned } from './helpers/certs.js';
import { tempDir } from './helpers/temp-dir.js';

/** Polls until `check` passes or 2 s have gone by. */
async function eventually(check: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + 2_000;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(50);
    }
  }
}

describe('ServiceSink', () => {
  /** Records what reaches the service; ids are the CN, as certId gives for plain names. */
  const fakeService = () => {
    const calls: string[] = [];
    const target: ImportTarget = {
      async importPem(certPem) {
        const id = /CN=([^\n,]+)/.exec(new X509Certificate(certPem).subject)![1]!;
        calls.push(`import ${id}`);
        return { cert: { id } };
      },
      async remove(id) {
        calls.push(`remove ${id}`);
      },
    };
    return { calls, target };
  };

  test('drop removes what the key gave, unless another key still gives it (then re-imports that one)', async () => {
    const { calls, target } = fakeService();
    const sink = new ServiceSink(target, silentLogger);
    const a = await selfSigned('a.test');
    const a2 = await selfSigned('a.test');
    await sink.put('/live/a', a.certPem, a.keyPem);
    await sink.put('/flat/a.pem', a2.certPem, a2.keyPem);
    await sink.drop('/flat/a.pem');
    await sink.drop('/live/a');
    await sink.drop('/never/given');
    assert.deepEqual(calls, ['import a.test', 'import a.test', 'import a.test', 'remove a.test']);
  });

  test('a key whose certificate changes names releases the old one', async () => {
    const { calls, target } = fakeService();
    const sink = new ServiceSink(target, silentLogger);
    const a = await selfSigned('a.test');
    const b = await selfSigned('b.test');
    await sink.put('/flat/x.pem', a.certPem, a.keyPem);
    await sink.put('/flat/x.pem', b.certPem, b.keyPem);
    assert.deepEqual(calls, ['import a.test', 'import b.test', 'remove a.test']);
  });
});

describe('sources into the real CertService and store', () => {
  let dir: string;
  let store: FsStore;
  let source: DirectorySource;

  before(async () => {
    dir = tempDir('certd-srcwire-');
    store = await FsStore.open(join(dir, 'data'));
  });
  after(async () => {
    await source?.stop();
    await store.close();
  });

  test('a certbot folder is imported, renewed and removed through CertService', async () => {
    const service = new CertService({ store, issuers: new Map(), defaultIssuer: 'internal', certDir: join(dir, 'certs'), log: silentLogger, rules: new RenewalRules({ issuerIds: [] }) });
    const live = join(dir, 'live');
    await mkdir(join(live, 'shop.test'), { recursive: true });
    const v1 = await selfSigned('shop.test');
    await writeFile(join(live, 'shop.test', 'fullchain.pem'), v1.certPem);
    await writeFile(join(live, 'shop.test', 'privkey.pem'), v1.keyPem);

    source = new DirectorySource({ path: live, everyMs: 60_000, debounceMs: 50 });
    await source.start(new ServiceSink(service, silentLogger));
    const stored = await store.loadCert('shop.test');
    assert.equal(stored?.certPem.trim(), v1.certPem.trim());
    assert.equal(stored?.meta.origin, 'source');

    const v2 = await selfSigned('shop.test');
    await writeFile(join(live, 'shop.test', 'privkey.pem'), v2.keyPem);
    await writeFile(join(live, 'shop.test', 'fullchain.pem'), v2.certPem);
    await eventually(async () => assert.equal((await store.loadCert('shop.test'))?.certPem.trim(), v2.certPem.trim()));

    await rm(join(live, 'shop.test'), { recursive: true });
    await eventually(async () => assert.equal(await store.loadCert('shop.test'), undefined));
  });
});

describe('createSources', () => {
  test('builds both kinds from config; a template needs names; caBundle is read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'certd-srccfg-'));
    try {
      await writeFile(join(dir, 'ca.pem'), (await selfSigned('ca.test')).certPem);
      const config = configFromObject(
        {
          haproxy: { certDir: './certs' },
          sources: [
            { type: 'directory', path: './live' },
            { type: 'http', url: 'https://vault.test/certs/{name}.pem', headers: { Authorization: 'Bearer x' }, caBundle: './ca.pem' },
          ],
        },
        dir,
      );
      const sources = await createSources(config.sources, { names: ['a.test'] });
      assert.ok(sources[0] instanceof DirectorySource);
      assert.ok(sources[1] instanceof HttpSource);
      assert.equal(sources[0].name, `directory:${join(dir, 'live')}`);
      await assert.rejects(createSources(config.sources), /sources\[1\]: the url has \{name\}/);
      const missingCa = configFromObject({ haproxy: { certDir: './certs' }, sources: [{ type: 'http', url: 'https://v.test/a.pem', caBundle: './nope.pem' }] }, dir);
      await assert.rejects(createSources(missingCa.sources), /sources\[0\]\.caBundle: cannot read/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
