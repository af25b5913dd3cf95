import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { errorCode } from '../../core/errors.js';
import { readIssuerCertificate } from '../../crypto/issuer-cert.js';
import { exportPrivateKeyPem, generateKeyPair } from '../../crypto/keys.js';
import { buildCertificate, selfSignedIssuer } from '../../crypto/x509.js';
import { LocalCa } from './ca.js';
import { createRoot, loadRoot } from './root.js';

const DAY_MS = 86_400_000;

test('new roots allow one CA below them; the intermediate is a CA with pathlen 0, critical nameConstraints and EKU serverAuth', async () => {
  const root = await createRoot();
  assert.equal(root.pathLen, 1);
  const now = new Date();
  const ca = LocalCa.fromRoot(root);
  const i = await ca.issueIntermediate({ constraints: { permitted: ['.gen.test'], excluded: ['.no.gen.test'] }, validityMs: 7 * DAY_MS, issuerId: 'internal', now });
  const cert = new X509Certificate(i.certPem);
  const rootCert = new X509Certificate(root.certPem);
  assert.ok(cert.checkIssued(rootCert) && cert.verify(rootCert.publicKey), 'signed by the root');
  assert.ok(cert.ca);
  assert.equal(readIssuerCertificate(cert.raw).pathLen, 0);
  assert.ok(cert.checkPrivateKey(createPrivateKey(i.keyPem)));
  assert.ok(Math.abs(i.notAfter.getTime() - now.getTime() - 7 * DAY_MS) < 1_000);
  // nameConstraints (2.5.29.30) critical, then the permitted and excluded dNSNames as written.
  assert.ok(cert.raw.includes(Buffer.from('0603551d1e0101ff', 'hex')), 'nameConstraints is critical');
  assert.ok(cert.raw.includes(Buffer.from('.gen.test', 'latin1')) && cert.raw.includes(Buffer.from('.no.gen.test', 'latin1')));
  assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1']);
});

test('a root made with pathlen:0 (before the forge) cannot sign the intermediate: CERTD_E_LOCAL_CA_NO_INTERMEDIATE says how to fix it', async () => {
  const { privateKey, publicKey } = await generateKeyPair('ecdsa-p256');
  const subject = { commonName: 'old root' };
  const old = buildCertificate({ subject, publicKey, issuer: selfSignedIssuer(subject, privateKey), notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 365 * DAY_MS), isCa: true });
  const root = loadRoot(old.pem, exportPrivateKeyPem(privateKey));
  assert.equal(root.pathLen, 0);
  await assert.rejects(
    LocalCa.fromRoot(root).issueIntermediate({ constraints: { permitted: ['.gen.test'], excluded: [] }, validityMs: DAY_MS, issuerId: 'internal' }),
    (err: Error) => {
      assert.equal(errorCode(err), 'CERTD_E_LOCAL_CA_NO_INTERMEDIATE');
      assert.match(err.message, /haproxy-certd ca init --issuer internal --force/);
      assert.match(err.message, /onDemand\.forge: false/);
      return true;
    },
  );
});
