import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseBundle } from '../src/core/bundle.js';
import { errorCode } from '../src/core/errors.js';
import {
  LocalCaIssuer,
  initLocalCa,
  loadOrCreateLocalCa,
  localCaKeys,
  loadRoot,
  type LocalCaStorage,
} from '../src/issuers/local-ca/index.js';
import type { Lock } from '../src/store/store.js';
import { tempDir } from './helpers/temp-dir.js';

const run = promisify(execFile);

/** A fake of our own storage subset: a Map, with a tick of latency so concurrent calls interleave. */
class MapStorage implements LocalCaStorage {
  readonly blobs = new Map<string, { data: Buffer; secret: boolean }>();
  readonly puts: string[] = [];
  async getBlob(key: string): Promise<Buffer | undefined> {
    await tick();
    return this.blobs.get(key)?.data;
  }
  async putBlob(key: string, data: Buffer | string, opts: { secret?: boolean } = {}): Promise<void> {
    await tick();
    this.blobs.set(key, { data: Buffer.from(data), secret: opts.secret ?? false });
    this.puts.push(key);
  }
}

/** The same, plus the optional cluster lock, recording its use. */
class LockingStorage extends MapStorage {
  readonly locks: string[] = [];
  held = 0;
  async lock(key: string): Promise<Lock> {
    this.locks.push(key);
    this.held++;
    let released = false;
    return {
      key,
      token: String(this.held),
      held: true,
      release: async () => {
        if (!released) this.held--;
        released = true;
      },
    };
  }
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

let dir: string;
let n = 0;
before(async () => {
  dir = tempDir('certd-local-ca-');
});

async function file(text: string): Promise<string> {
  const path = join(dir, `f${n++}.pem`);
  await writeFile(path, text);
  return path;
}

async function openssl(...args: string[]): Promise<string> {
  const { stdout } = await run('openssl', args);
  return stdout;
}

/** The check the brief asks of every leaf: strict X.509, TLS server purpose, chained to the root. */
async function assertVerifies(rootPem: string, leafPem: string): Promise<void> {
  const out = await openssl('verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', await file(rootPem), await file(leafPem));
  assert.match(out, /: OK\n$/);
}

async function ext(certPem: string, name: string): Promise<string> {
  return openssl('x509', '-noout', '-ext', name, '-in', await file(certPem));
}

/** Makes a root with openssl itself, as an operator would. */
async function opensslRoot(opts: { ca: boolean; key?: 'ec' | 'rsa'; days?: number }): Promise<{ certPem: string; keyPem: string }> {
  const keyPath = join(dir, `k${n++}.pem`);
  const certPath = join(dir, `c${n++}.pem`);
  const keyArgs = opts.key === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  const exts = opts.ca
    ? ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']
    : ['-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'keyUsage=critical,digitalSignature'];
  await openssl('req', '-x509', ...keyArgs, '-nodes', '-keyout', keyPath, '-out', certPath, '-subj', '/O=Ops/CN=Ops Root',
    '-days', String(opts.days ?? 365), ...exts);
  return { certPem: await readFile(certPath, 'utf8'), keyPem: await readFile(keyPath, 'utf8') };
}

describe('LocalCaIssuer', () => {
  it('issues an ECDSA leaf with DNS and IP SANs that openssl verifies strictly', async () => {
    const storage = new MapStorage();
    const issuer = new LocalCaIssuer(storage, { id: 'internal' });
    const names = ['www.example.test', '*.apps.example.test', '192.0.2.7', '2001:db8::1', '::ffff:198.51.100.1'];
    const before = Date.now();
    const bundle = await issuer.issue({ names });
    const ca = await issuer.ca();
    await assertVerifies(ca.rootPem, bundle.certPem);

    const leaf = new X509Certificate(bundle.certPem);
    assert.equal(
      leaf.subjectAltName,
      'DNS:www.example.test, DNS:*.apps.example.test, IP Address:192.0.2.7, IP Address:2001:DB8:0:0:0:0:0:1, IP Address:0:0:0:0:0:FFFF:C633:6401',
    );
    assert.match(await ext(bundle.certPem, 'subjectAltName'), /DNS:www\.example\.test, DNS:\*\.apps\.example\.test, IP Address:192\.0\.2\.7/);
    assert.equal(leaf.subject, 'CN=www.example.test');
    assert.equal(leaf.ca, false);
    assert.equal(leaf.publicKey.asymmetricKeyType, 'ec');
    assert.equal(pemCount(bundle.certPem), 1, 'leaf only: clients trust the root itself');
    assert.match(bundle.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);

    const notBefore = Date.parse(leaf.validFrom);
    const notAfter = Date.parse(leaf.validTo);
    assert.ok(Math.abs(notBefore - (before - 60_000)) < 5_000, 'notBefore is a minute back');
    assert.ok(Math.abs(notAfter - (before + 30 * 86_400_000)) < 5_000, 'valid 30 days by default');

    const usage = await ext(bundle.certPem, 'keyUsage,extendedKeyUsage,basicConstraints');
    assert.match(usage, /Key Usage: critical\n\s+Digital Signature\n/);
    assert.match(usage, /TLS Web Server Authentication/);
    assert.match(usage, /Basic Constraints: critical\n\s+CA:FALSE/);
    const ids = await ext(bundle.certPem, 'subjectKeyIdentifier,authorityKeyIdentifier');
    const rootSki = (await ext(ca.rootPem, 'subjectKeyIdentifier')).split('\n')[1]!.trim();
    assert.ok(ids.includes(rootSki), 'AKI is the root SKI');

    const parsed = parseBundle(bundle.certPem, bundle.keyPem);
    assert.deepEqual(parsed.names, names.slice(0, 3).concat(['2001:db8:0:0:0:0:0:1', '0:0:0:0:0:ffff:c633:6401']));
    assert.match(parsed.serial, /^[0-7][0-9a-f]{31}$/, '16-byte positive serial');
  });

  it('issues an RSA leaf (keyEncipherment, signed by the ECDSA root)', async () => {
    const storage = new MapStorage();
    const issuer = new LocalCaIssuer(storage, { id: 'internal', keyType: 'rsa-2048', validityMs: 3_600_000 });
    const bundle = await issuer.issue({ names: ['rsa.example.test', '10.1.2.3'] });
    await assertVerifies((await issuer.ca()).rootPem, bundle.certPem);
    const leaf = new X509Certificate(bundle.certPem);
    assert.equal(leaf.publicKey.asymmetricKeyType, 'rsa');
    assert.equal(leaf.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
    assert.match(await ext(bundle.certPem, 'keyUsage'), /Digital Signature, Key Encipherment/);
    assert.match(await openssl('x509', '-noout', '-text', '-in', await file(bundle.certPem)), /Signature Algorithm: ecdsa-with-SHA256/);
    assert.ok(Math.abs(Date.parse(leaf.validTo) - Date.now() - 3_600_000) < 5_000);
    parseBundle(bundle.certPem, bundle.keyPem);
  });

  it('a request keyType overrides the issuer default', async () => {
    const issuer = new LocalCaIssuer(new MapStorage(), { id: 'internal', keyType: 'rsa-2048' });
    const bundle = await issuer.issue({ names: ['ec.example.test'], keyType: 'ecdsa-p256' });
    assert.equal(new X509Certificate(bundle.certPem).publicKey.asymmetricKeyType, 'ec');
  });

  it('creates one root for concurrent first issues, then issues in parallel', async () => {
    const storage = new MapStorage();
    const a = new LocalCaIssuer(storage, { id: 'internal' });
    const b = new LocalCaIssuer(storage, { id: 'internal' });
    const bundles = await Promise.all(
      Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).issue({ names: [`n${i}.example.test`] })),
    );
    assert.deepEqual(
      storage.puts.filter((k) => k.endsWith('root.pem')),
      ['local-ca/internal/root.pem'],
    );
    const rootPem = storage.blobs.get('local-ca/internal/root.pem')!.data.toString();
    assert.equal((await a.ca()).rootPem, rootPem);
    assert.equal((await b.ca()).rootPem, rootPem);
    await Promise.all(bundles.map((bundle) => assertVerifies(rootPem, bundle.certPem)));
    assert.equal(new Set(bundles.map((x) => new X509Certificate(x.certPem).serialNumber)).size, bundles.length);
  });

  it('stores the root key as a secret blob and the certificate as a plain one', async () => {
    const storage = new MapStorage();
    const ca = await loadOrCreateLocalCa(storage, 'internal');
    const keys = localCaKeys('internal');
    assert.deepEqual(keys, { cert: 'local-ca/internal/root.pem', key: 'local-ca/internal/root.key', lock: 'local-ca/internal/init' });
    assert.equal(storage.blobs.get(keys.key)?.secret, true);
    assert.equal(storage.blobs.get(keys.cert)?.secret, false);
    assert.deepEqual(storage.puts, [keys.key, keys.cert], 'key first, certificate last');
    assert.equal(storage.blobs.get(keys.cert)!.data.toString(), ca.rootPem);

    const root = new X509Certificate(ca.rootPem);
    assert.match(root.subject, /^O=haproxy-certd\nCN=haproxy-certd local CA [0-9a-f]{8}$/);
    assert.equal(root.ca, true);
    assert.equal(root.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const years = (Date.parse(root.validTo) - Date.now()) / (365.25 * 86_400_000);
    assert.ok(years > 9.9 && years < 10.1, `root lives 10 years, got ${years}`);
    assert.match(await ext(ca.rootPem, 'basicConstraints,keyUsage'), /Key Usage: critical\n\s+Certificate Sign, CRL Sign\n[\s\S]*Basic Constraints: critical\n\s+CA:TRUE/);
    // The stored root loads again (a restart) as the same CA.
    assert.equal((await loadOrCreateLocalCa(storage, 'internal')).fingerprint, ca.fingerprint);
    assert.equal(storage.puts.length, 2);
  });

  it('takes the cluster lock, when the store has one, to create the root', async () => {
    const storage = new LockingStorage();
    await new LocalCaIssuer(storage, { id: 'edge' }).issue({ names: ['a.example.test'] });
    assert.deepEqual(storage.locks, ['local-ca/edge/init']);
    assert.equal(storage.held, 0);
    // Loading an existing root needs no lock.
    await new LocalCaIssuer(storage, { id: 'edge' }).issue({ names: ['b.example.test'] });
    assert.deepEqual(storage.locks, ['local-ca/edge/init']);
  });

  it('omits a CN over 64 characters and marks the SAN critical', async () => {
    const issuer = new LocalCaIssuer(new MapStorage(), { id: 'internal' });
    const long = `${'a'.repeat(60)}.example.test`;
    const bundle = await issuer.issue({ names: [long] });
    await assertVerifies((await issuer.ca()).rootPem, bundle.certPem);
    assert.ok(!new X509Certificate(bundle.certPem).subject, 'empty subject');
    assert.match(await ext(bundle.certPem, 'subjectAltName'), /Subject Alternative Name: critical\n\s+DNS:a{60}\.example\.test/);
  });

  it('reports facts equal to what parsing the bundle finds (the service trusts them)', async () => {
    const issuer = new LocalCaIssuer(new MapStorage(), { id: 'internal' });
    // 300 random serials cover ones whose first byte is below 0x10 (a leading zero in hex).
    for (let i = 0; i < 300; i++) {
      const names = i % 3 === 0 ? [`${'b'.repeat(60)}.example.test`, '192.0.2.7'] : [`f${i}.example.test`];
      const bundle = await issuer.issue({ names, keyType: i % 50 === 0 ? 'rsa-2048' : undefined });
      const { certPem, keyPem, ...parsed } = parseBundle(bundle.certPem, bundle.keyPem);
      assert.deepEqual(bundle.facts, parsed);
      assert.equal(keyPem, bundle.keyPem);
    }
  });

  it('never issues past the root and refuses once the root expired', async () => {
    const storage = new MapStorage();
    const supplied = await opensslRoot({ ca: true, days: 2 });
    await initLocalCa(storage, 'internal', supplied);
    const issuer = new LocalCaIssuer(storage, { id: 'internal' });
    const leaf = new X509Certificate((await issuer.issue({ names: ['short.example.test'] })).certPem);
    assert.equal(leaf.validTo, new X509Certificate(supplied.certPem).validTo);

    const ca = await issuer.ca();
    const late = new Date(Date.now() + 3 * 86_400_000);
    await assert.rejects(ca.issueLeaf({ names: ['x.example.test'], validityMs: 60_000, now: late }), {
      code: 'CERTD_E_CERT_EXPIRED',
    });
  });

  it('honours an aborted signal before doing any work', async () => {
    const storage = new MapStorage();
    const issuer = new LocalCaIssuer(storage, { id: 'internal' });
    await assert.rejects(issuer.issue({ names: ['a.example.test'], signal: AbortSignal.abort() }), { name: 'AbortError' });
    assert.equal(storage.puts.length, 0);
  });

  it('rejects bad options when built', () => {
    const storage = new MapStorage();
    for (const opts of [{ id: '../x' }, { id: 'ok', validityMs: 0 }, { id: 'ok', keyType: 'dsa' as never }]) {
      assert.throws(() => new LocalCaIssuer(storage, opts), { code: 'CERTD_E_CONFIG' });
    }
  });
});

describe('initLocalCa', () => {
  it('uses a supplied ECDSA root for every leaf', async () => {
    const storage = new MapStorage();
    const supplied = await opensslRoot({ ca: true });
    const ca = await initLocalCa(storage, 'internal', supplied);
    assert.equal(ca.rootPem, supplied.certPem);
    assert.equal(storage.blobs.get('local-ca/internal/root.key')?.secret, true);
    const issuer = new LocalCaIssuer(storage, { id: 'internal' });
    const bundle = await issuer.issue({ names: ['svc.example.test', '127.0.0.1'] });
    await assertVerifies(supplied.certPem, bundle.certPem);
    assert.equal(new X509Certificate(bundle.certPem).issuer, 'O=Ops\nCN=Ops Root');
  });

  it('uses a supplied RSA root and signs with sha256WithRSAEncryption', async () => {
    const storage = new MapStorage();
    const supplied = await opensslRoot({ ca: true, key: 'rsa' });
    await initLocalCa(storage, 'internal', supplied);
    const issuer = new LocalCaIssuer(storage, { id: 'internal' });
    for (const keyType of ['ecdsa-p256', 'rsa-2048'] as const) {
      const bundle = await issuer.issue({ names: ['rsa-root.example.test'], keyType });
      await assertVerifies(supplied.certPem, bundle.certPem);
      assert.match(await openssl('x509', '-noout', '-text', '-in', await file(bundle.certPem)), /Signature Algorithm: sha256WithRSAEncryption/);
    }
  });

  it('rejects a supplied certificate that is not a CA, and stores nothing', async () => {
    const storage = new MapStorage();
    const notCa = await opensslRoot({ ca: false });
    await assert.rejects(initLocalCa(storage, 'internal', notCa), (err: unknown) => {
      assert.equal(errorCode(err), 'CERTD_E_LOCAL_CA_NOT_CA');
      assert.match((err as Error).message, /not a CA/);
      return true;
    });
    assert.equal(storage.puts.length, 0);
  });

  it('rejects a supplied key that does not match the certificate', async () => {
    const storage = new MapStorage();
    const one = await opensslRoot({ ca: true });
    const two = await opensslRoot({ ca: true });
    await assert.rejects(initLocalCa(storage, 'internal', { certPem: one.certPem, keyPem: two.keyPem }), {
      code: 'CERTD_E_KEY_MISMATCH',
    });
    assert.equal(storage.puts.length, 0);
  });

  it('rejects half a root, garbage and expired roots with typed errors', async () => {
    const storage = new MapStorage();
    const good = await opensslRoot({ ca: true });
    await assert.rejects(initLocalCa(storage, 'internal', { certPem: good.certPem }), { code: 'CERTD_E_USAGE' });
    await assert.rejects(initLocalCa(storage, 'internal', { certPem: 'nope', keyPem: good.keyPem }), { code: 'CERTD_E_BAD_PEM' });
    await assert.rejects(initLocalCa(storage, 'internal', { certPem: good.certPem, keyPem: 'nope' }), { code: 'CERTD_E_BAD_PEM' });
    assert.throws(() => loadRoot(good.certPem, good.keyPem, new Date(Date.now() + 400 * 86_400_000)), {
      code: 'CERTD_E_CERT_EXPIRED',
    });
    assert.equal(storage.puts.length, 0);
  });

  it('refuses to replace a stored root unless forced', async () => {
    const storage = new MapStorage();
    const first = await initLocalCa(storage, 'internal');
    await assert.rejects(initLocalCa(storage, 'internal'), { code: 'CERTD_E_LOCAL_CA_EXISTS' });
    await assert.rejects(initLocalCa(storage, 'internal', await opensslRoot({ ca: true })), { code: 'CERTD_E_LOCAL_CA_EXISTS' });
    assert.equal((await loadOrCreateLocalCa(storage, 'internal')).fingerprint, first.fingerprint);
    const second = await initLocalCa(storage, 'internal', { force: true });
    assert.notEqual(second.fingerprint, first.fingerprint);
    assert.equal((await loadOrCreateLocalCa(storage, 'internal')).fingerprint, second.fingerprint);
  });

  it('reports a stored certificate without its key as store corruption', async () => {
    const storage = new MapStorage();
    const ca = await initLocalCa(storage, 'internal');
    storage.blobs.delete('local-ca/internal/root.key');
    await assert.rejects(loadOrCreateLocalCa(storage, 'internal'), { code: 'CERTD_E_STORE_CORRUPT' });
    storage.blobs.set('local-ca/internal/root.key', { data: Buffer.from('garbage'), secret: true });
    await assert.rejects(loadOrCreateLocalCa(storage, 'internal'), { code: 'CERTD_E_STORE_CORRUPT' });
    assert.ok(ca.rootPem);
  });

  it('treats a key without a certificate (interrupted init) as no root', async () => {
    const storage = new MapStorage();
    storage.blobs.set('local-ca/internal/root.key', { data: Buffer.from('leftover'), secret: true });
    const ca = await loadOrCreateLocalCa(storage, 'internal');
    assert.ok(new X509Certificate(ca.rootPem).ca);
  });
});

function pemCount(text: string): number {
  return text.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
}
