import type { CertBundle } from '../core/bundle.js';
import { exportPrivateKeyPem, generateKeyPair } from '../crypto/keys.js';
import { buildCertificate, selfSignedIssuer } from '../crypto/x509.js';
import type { Lock, Store } from '../store/store.js';

const BLOB = 'haproxy/default.pem';
const TEN_YEARS_MS = 10 * 365 * 86_400_000;

const LOCK = 'haproxy/default';

/**
 * The fallback certificate HAProxy serves to names we do not know (and needs to start at all):
 * self-signed, made once, kept in the store so every daemon and restart uses the same one. Made
 * under a cluster-wide lock, looked for again under it and written fenced with it: replicas
 * starting at once on an empty store end with one (the others load the winner's).
 */
export async function loadOrCreateDefaultCert(store: Store): Promise<CertBundle> {
  const stored = await readDefault(store);
  if (stored) return stored;
  const lock = await store.lock(LOCK, { waitMs: 60_000 });
  try {
    return (await readDefault(store)) ?? (await createDefault(store, lock));
  } finally {
    await lock.release();
  }
}

async function readDefault(store: Store): Promise<CertBundle | undefined> {
  const stored = await store.getBlob(BLOB);
  return stored && (JSON.parse(stored.toString('utf8')) as CertBundle);
}

async function createDefault(store: Store, fence: Lock): Promise<CertBundle> {
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
  await store.putBlob(BLOB, JSON.stringify(bundle), { secret: true, fence });
  return bundle;
}
