import type { CertBundle } from '../core/bundle.js';
import { exportPrivateKeyPem, generateKeyPair } from '../crypto/keys.js';
import { buildCertificate, selfSignedIssuer } from '../crypto/x509.js';
import type { Store } from '../store/store.js';

const BLOB = 'haproxy/default.pem';
const TEN_YEARS_MS = 10 * 365 * 86_400_000;

/**
 * The fallback certificate HAProxy serves to names we do not know (and needs to start at all):
 * self-signed, made once, kept in the store so every daemon and restart uses the same one.
 */
export async function loadOrCreateDefaultCert(store: Store): Promise<CertBundle> {
  const stored = await store.getBlob(BLOB);
  if (stored) return JSON.parse(stored.toString('utf8')) as CertBundle;
  const { privateKey, publicKey } = await generateKeyPair('ecdsa-p256');
  const subject = { organization: 'haproxy-certd', commonName: 'haproxy-certd default certificate' };
  const now = Date.now();
  const cert = buildCertificate({
    subject,
    publicKey,
    issuer: selfSignedIssuer(subject, privateKey),
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + TEN_YEARS_MS),
  });
  const bundle: CertBundle = { certPem: cert.pem, keyPem: exportPrivateKeyPem(privateKey) };
  await store.putBlob(BLOB, JSON.stringify(bundle), { secret: true });
  return bundle;
}
