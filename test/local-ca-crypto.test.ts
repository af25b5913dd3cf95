import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, SubjectAlternativeName, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { buildCsr } from '../src/crypto/csr.js';
import { exportPrivateKeyPem, generateKeyPair, takeLeafKeyPair } from '../src/crypto/keys.js';
import { buildName, nameDer } from '../src/crypto/dn.js';
import { generalNames, generalNamesDer, ipAddressBytes } from '../src/crypto/san.js';
import { signerFor } from '../src/crypto/signing.js';
import { childrenOf, readTlv } from '../src/crypto/der.js';
import { readIssuerCertificate } from '../src/crypto/issuer-cert.js';
import { keyIdentifier, publicKeyInfo } from '../src/crypto/spki.js';
import { buildCertificate, randomSerial, selfSignedIssuer } from '../src/crypto/x509.js';
import { createRoot, loadRoot, LocalCa } from '../src/issuers/local-ca/index.js';
import { makeDeployEntry } from '../src/haproxy/deploy/entry.js';
import { tempDir } from './helpers/temp-dir.js';

const run = promisify(execFile);
let dir: string;
let n = 0;
before(async () => {
  dir = tempDir('certd-local-ca-crypto-');
});

async function file(text: string): Promise<string> {
  const path = join(dir, `f${n++}.pem`);
  await writeFile(path, text);
  return path;
}

async function openssl(...args: string[]): Promise<string> {
  const { stdout, stderr } = await run('openssl', args);
  return stdout + stderr;
}

describe('buildCsr', () => {
  for (const keyType of ['ecdsa-p256', 'rsa-2048'] as const) {
    it(`makes a ${keyType} CSR that openssl verifies, with the names as SAN request`, async () => {
      const { privateKey } = await generateKeyPair(keyType);
      const csr = buildCsr(privateKey, ['www.example.test', 'example.test', '192.0.2.1', 'www.example.test']);
      assert.match(csr.pem, /^-----BEGIN CERTIFICATE REQUEST-----\n/);
      const path = await file(csr.pem);
      assert.match(await openssl('req', '-verify', '-noout', '-in', path), /verify OK/);
      const text = await openssl('req', '-noout', '-text', '-in', path);
      assert.match(text, /Subject: CN = www\.example\.test\n/);
      assert.match(text, /Subject Alternative Name: \n\s+DNS:www\.example\.test, DNS:example\.test, IP Address:192\.0\.2\.1\n/);
      assert.match(text, keyType === 'rsa-2048' ? /sha256WithRSAEncryption/ : /ecdsa-with-SHA256/);
      assert.deepEqual(csr.der, Buffer.from(csr.pem.replace(/-----[^-]+-----|\n/g, ''), 'base64'));
    });
  }

  it('leaves the subject empty for a name over 64 characters and marks the SAN critical', async () => {
    const { privateKey } = await generateKeyPair();
    const long = `${'b'.repeat(70)}.example.test`;
    const path = await file(buildCsr(privateKey, [long]).pem);
    assert.match(await openssl('req', '-verify', '-noout', '-in', path), /verify OK/);
    assert.match(await openssl('req', '-noout', '-text', '-in', path), /Subject Alternative Name: critical\n\s+DNS:b{70}/);
  });

  it('refuses an empty name list', async () => {
    const { privateKey } = await generateKeyPair();
    assert.throws(() => buildCsr(privateKey, []), { code: 'CERTD_E_INVALID_NAME' });
  });
});

describe('keys and SPKI', () => {
  it('assembles P-256 SPKIs identical to the OpenSSL encoder', () => {
    for (let i = 0; i < 50; i++) {
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const expected = publicKey.export({ type: 'spki', format: 'der' });
      for (const key of [publicKey, privateKey]) {
        const info = publicKeyInfo(key);
        assert.deepEqual(info.der, expected);
        assert.deepEqual(info.keyBits, Buffer.from(AsnConvert.parse(expected, SubjectPublicKeyInfo).subjectPublicKey));
      }
    }
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    const rsaDer = rsa.export({ type: 'spki', format: 'der' });
    assert.deepEqual(publicKeyInfo(rsa).der, rsaDer);
    assert.deepEqual(publicKeyInfo(rsa).keyBits, Buffer.from(AsnConvert.parse(rsaDer, SubjectPublicKeyInfo).subjectPublicKey));
  });

  it('computes the same key identifier as openssl', async () => {
    for (const keyType of ['ecdsa-p256', 'rsa-2048'] as const) {
      const { privateKey } = await generateKeyPair(keyType);
      const cert = join(dir, `ski${n++}.pem`);
      await openssl('req', '-x509', '-key', await file(exportPrivateKeyPem(privateKey)), '-subj', '/CN=ski', '-days', '1', '-out', cert);
      const ski = (await openssl('x509', '-noout', '-ext', 'subjectKeyIdentifier', '-in', cert)).split('\n')[1]!.trim();
      const ours = [...keyIdentifier(publicKeyInfo(privateKey).keyBits)].map((b) => b.toString(16).padStart(2, '0').toUpperCase());
      assert.equal(ours.join(':'), ski);
    }
  });

  it('exports PKCS#8 PEM identical to the OpenSSL encoder, which parses back to the same key', async () => {
    for (let i = 0; i < 50; i++) {
      const { privateKey } = await generateKeyPair(i === 0 ? 'rsa-2048' : 'ecdsa-p256');
      const pem = exportPrivateKeyPem(privateKey);
      assert.equal(pem, privateKey.export({ type: 'pkcs8', format: 'pem' }));
      assert.ok(createPrivateKey(pem).equals(privateKey));
    }
  });

  it('hands out each leaf key pair once, made ahead or on the spot', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) {
      // Sometimes let the spares refill, sometimes take them faster than they come back.
      if (i % 3 === 0) await new Promise((resolve) => setImmediate(resolve));
      const { publicKey, privateKey } = await takeLeafKeyPair();
      assert.equal(privateKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
      assert.ok(createPublicKey(privateKey).equals(publicKey));
      const id = publicKeyInfo(publicKey).der.toString('hex');
      assert.ok(!seen.has(id), 'a key pair was handed out twice');
      seen.add(id);
    }
    assert.equal((await takeLeafKeyPair('rsa-2048')).privateKey.asymmetricKeyType, 'rsa');
  });

  it('refuses keys it cannot sign with', () => {
    const ed = generateKeyPairSync('ed25519').privateKey;
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey;
    for (const key of [ed, small, p521]) assert.throws(() => signerFor(key), { code: 'CERTD_E_UNSUPPORTED_KEY' });
    assert.throws(() => signerFor(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey), {
      code: 'CERTD_E_UNSUPPORTED_KEY',
    });
  });

  it('rejects an unknown key type', async () => {
    await assert.rejects(generateKeyPair('dsa' as never), { code: 'CERTD_E_UNSUPPORTED_KEY' });
  });
});

describe('IP SANs', () => {
  it('encodes IPv4, IPv6 and IPv4-embedded IPv6 addresses', () => {
    const hex = (ip: string) => ipAddressBytes(ip).toString('hex');
    assert.equal(hex('192.0.2.1'), 'c0000201');
    assert.equal(hex('::'), '0'.repeat(32));
    assert.equal(hex('::1'), `${'0'.repeat(31)}1`);
    assert.equal(hex('2001:db8::1'), '20010db8000000000000000000000001');
    assert.equal(hex('fe80::'), `fe80${'0'.repeat(28)}`);
    assert.equal(hex('::ffff:1.2.3.4'), '00000000000000000000ffff01020304');
    assert.equal(hex('64:ff9b::192.0.2.33'), '0064ff9b0000000000000000c0000221');
    assert.equal(hex('1:2:3:4:5:6:7:8'), '00010002000300040005000600070008');
  });

  it('refuses a zone id and non-addresses', () => {
    assert.throws(() => ipAddressBytes('fe80::1%eth0'), { code: 'CERTD_E_CERT_ENCODING' });
    assert.throws(() => ipAddressBytes('example.test'), { code: 'CERTD_E_CERT_ENCODING' });
  });
});

describe('names written directly', () => {
  it('encodes DNs as the schema library does', () => {
    const dns = [{ commonName: 'a.example.test' }, { commonName: 'x'.repeat(64), organization: 'Örg ünïcode' }, { organization: 'o' }, {}];
    for (const dn of dns) assert.deepEqual(nameDer(dn), Buffer.from(AsnConvert.serialize(buildName(dn))));
    assert.throws(() => nameDer({ commonName: 'x'.repeat(65) }), { code: 'CERTD_E_CERT_ENCODING' });
    assert.throws(() => nameDer({ commonName: '' }), { code: 'CERTD_E_CERT_ENCODING' });
  });

  it('encodes SANs as the schema library does, and refuses a non-ASCII DNS name', () => {
    const lists = [['a.example.test'], ['192.0.2.1', '2001:db8::2', 'x.example.test', '*.w.example.test'], ['l'.repeat(63) + '.' + 'm'.repeat(63) + '.test']];
    for (const names of lists) {
      assert.deepEqual(generalNamesDer(names), Buffer.from(AsnConvert.serialize(new SubjectAlternativeName(generalNames(names)))));
    }
    assert.throws(() => generalNamesDer(['bücher.test']), { code: 'CERTD_E_CERT_ENCODING' });
  });
});

describe('buildCertificate', () => {
  const rootKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const issuer = selfSignedIssuer({ commonName: 'unit root' }, rootKey.privateKey);
  const base = { subject: { commonName: 'a.example.test' }, subjectAltNames: ['a.example.test'], publicKey: rootKey.publicKey, issuer };

  it('splices a TBSCertificate that the schema library re-encodes byte for byte', async () => {
    const rsaKey = await generateKeyPair('rsa-2048');
    const specs = [
      { ...base, notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000) },
      { ...base, subject: {}, subjectAltNames: ['192.0.2.1', '2001:db8::2', 'x.example.test'], publicKey: rsaKey.publicKey,
        notBefore: new Date('1999-01-01T00:00:00Z'), notAfter: new Date('2070-06-30T12:34:56Z') },
      { ...base, subject: { commonName: 'ca', organization: 'org' }, subjectAltNames: [], isCa: true,
        notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000) },
    ];
    for (const spec of specs) {
      const der = buildCertificate(spec).der;
      const [tbs, alg, sig] = childrenOf(der, readTlv(der));
      assert.equal(readTlv(der).end, der.length);
      const parsed = AsnConvert.parse(der, Certificate);
      assert.deepEqual(Buffer.from(AsnConvert.serialize(parsed.tbsCertificate)), der.subarray(tbs!.start, tbs!.end));
      assert.deepEqual(Buffer.from(AsnConvert.serialize(parsed.signatureAlgorithm)), der.subarray(alg!.start, alg!.end));
      assert.deepEqual(parsed.tbsCertificate.signature, parsed.signatureAlgorithm);
      assert.equal(sig!.end, der.length);
      assert.ok(new X509Certificate(der).verify(rootKey.publicKey));
    }
  });

  it('writes UTCTime through 2049 and GeneralizedTime from 2050', () => {
    const cert = buildCertificate({ ...base, notBefore: new Date('2049-12-31T23:59:59Z'), notAfter: new Date('2050-01-01T00:00:00Z') });
    const validity = AsnConvert.parse(cert.der, Certificate).tbsCertificate.validity;
    assert.equal(validity.notBefore.utcTime?.toISOString(), '2049-12-31T23:59:59.000Z');
    assert.equal(validity.notBefore.generalTime, undefined);
    assert.equal(validity.notAfter.generalTime?.toISOString(), '2050-01-01T00:00:00.000Z');
    assert.equal(validity.notAfter.utcTime, undefined);
    assert.equal(new Date(new X509Certificate(cert.pem).validTo).toISOString(), '2050-01-01T00:00:00.000Z');
  });

  it('makes random, positive, minimally encoded 16-byte serials', () => {
    for (let i = 0; i < 200; i++) {
      const serial = randomSerial();
      assert.equal(serial.length, 16);
      assert.ok(serial[0]! > 0 && serial[0]! < 0x80);
    }
    const cert = new X509Certificate(buildCertificate({ ...base, serial: Uint8Array.of(0x01, 0x02), notBefore: new Date(), notAfter: new Date(Date.now() + 1000) }).pem);
    assert.equal(cert.serialNumber, '0102');
  });

  it('refuses impossible inputs', () => {
    const now = new Date();
    assert.throws(() => buildCertificate({ ...base, notBefore: now, notAfter: now }), { code: 'CERTD_E_CERT_ENCODING' });
    assert.throws(() => buildCertificate({ ...base, subject: {}, subjectAltNames: [], notBefore: now, notAfter: new Date(+now + 1) }), {
      code: 'CERTD_E_CERT_ENCODING',
    });
    for (const serial of [Uint8Array.of(0x80), Uint8Array.of(0, 1), Uint8Array.of(0), new Uint8Array(21).fill(1)]) {
      assert.throws(() => buildCertificate({ ...base, serial, notBefore: now, notAfter: new Date(+now + 1000) }), {
        code: 'CERTD_E_CERT_ENCODING',
      });
    }
  });

  it('signs with ecdsa-with-SHA384 under a supplied P-384 root', async () => {
    const keyPath = join(dir, `p384k${n++}.pem`);
    const certPath = join(dir, `p384c${n++}.pem`);
    await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', keyPath, '-out', certPath,
      '-subj', '/CN=P-384 root', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
    const rootPem = await readFile(certPath, 'utf8');
    const root = loadRoot(rootPem, await readFile(keyPath, 'utf8'));
    const leafKey = await generateKeyPair();
    const leaf = buildCertificate({ ...base, publicKey: leafKey.publicKey, issuer: root.issuer, notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000) });
    const out = await openssl('verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', certPath, await file(leaf.pem));
    assert.match(out, /: OK\n/);
    assert.match(await openssl('x509', '-noout', '-text', '-in', await file(leaf.pem)), /Signature Algorithm: ecdsa-with-SHA384/);
  });

  it("copies a supplied CA's subject bytes verbatim as the issuer (PrintableString country included)", async () => {
    const keyPath = join(dir, `pk${n++}.pem`);
    const certPath = join(dir, `pc${n++}.pem`);
    await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyPath, '-out', certPath,
      '-subj', '/C=DE/O=Ops GmbH/CN=Ops Root', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
    const rootPem = await readFile(certPath, 'utf8');
    const root = loadRoot(rootPem, await readFile(keyPath, 'utf8'));
    const leaf = buildCertificate({ ...base, issuer: root.issuer, notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000) });
    const fields = childrenOf(leaf.der, childrenOf(leaf.der, readTlv(leaf.der))[0]!);
    const issuerDer = leaf.der.subarray(fields[3]!.start, fields[3]!.end);
    assert.deepEqual(issuerDer, readIssuerCertificate(new X509Certificate(rootPem).raw).subjectDer);
    assert.ok(issuerDer.includes(Buffer.from([0x13, 0x02, 0x44, 0x45])), 'C=DE stays a PrintableString');
  });
});

describe('deploy entries', () => {
  it('carry the leaf SHA-1 as X509 and `show ssl cert` print it, and refuse a bundle without a certificate', async () => {
    const ca = await createRoot();
    for (let i = 0; i < 5; i++) {
      const leaf = await LocalCa.fromRoot(ca).issueLeaf({ names: [`e${i}.example.test`], validityMs: 86_400_000 });
      // The chain's second certificate must not change the hash: the leaf comes first.
      const bundle = { certPem: `${leaf.certPem}${ca.certPem}`, keyPem: leaf.keyPem };
      const entry = makeDeployEntry('/certs', { id: `e${i}`, bundle, sni: [] });
      assert.equal(entry.sha1, new X509Certificate(leaf.certPem).fingerprint.replace(/:/g, ''));
    }
    assert.throws(() => makeDeployEntry('/certs', { id: 'x', bundle: { certPem: 'junk', keyPem: '' }, sni: [] }), { code: 'CERTD_E_BAD_PEM' });
  });
});
