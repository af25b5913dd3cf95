import { X509Certificate, randomBytes, type KeyObject } from 'node:crypto';
import { pemBlocks } from '../../core/bundle.js';
import { CertExpiredError, InvalidPemError, KeyMismatchError } from '../../core/errors.js';
import { readIssuerCertificate } from '../../crypto/issuer-cert.js';
import { exportPrivateKeyPem, generateKeyPair, parsePrivateKeyPem } from '../../crypto/keys.js';
import { buildCertificate, issuerRef, selfSignedIssuer, type IssuerRef } from '../../crypto/x509.js';
import { LocalCaNotCaError } from './errors.js';

/** A CA certificate with its key, checked and ready to sign. */
export interface LocalCaRoot {
  readonly certPem: string;
  /** PKCS#8 PEM. Never logged. */
  readonly keyPem: string;
  readonly issuer: IssuerRef;
  readonly notAfter: Date;
  /** SHA-256 of the DER, colon-separated hex, as browsers and `openssl x509 -fingerprint` show it. */
  readonly fingerprint: string;
  /** basicConstraints pathLenConstraint: 0 means it cannot sign the forge intermediate (undefined: no limit). */
  readonly pathLen?: number;
}

const ROOT_YEARS = 10;
/** How far notBefore is set back, so clients whose clock lags ours accept a certificate made just now. */
export const CLOCK_SKEW_MS = 60_000;

/**
 * Makes a new root: ECDSA P-256, valid 10 years, CN "haproxy-certd local CA <8 hex>" (the suffix
 * tells roots apart in a trust store), O "haproxy-certd", pathlen 1: one CA may sit below it, the
 * forge intermediate HAProxy signs first on-demand handshakes with (roots made before allowed
 * none). Safe to call concurrently.
 */
export async function createRoot(now = new Date()): Promise<LocalCaRoot> {
  const { privateKey, publicKey } = await generateKeyPair('ecdsa-p256');
  const subject = { organization: 'haproxy-certd', commonName: `haproxy-certd local CA ${randomBytes(4).toString('hex')}` };
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + ROOT_YEARS);
  const cert = buildCertificate({
    subject,
    publicKey,
    issuer: selfSignedIssuer(subject, privateKey),
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter,
    isCa: true,
    pathLen: 1,
  });
  return loadRoot(cert.pem, exportPrivateKeyPem(privateKey), now);
}

/**
 * Checks a root given as PEM and prepares it for signing: exactly one certificate, a CA
 * (basicConstraints CA:true, keyCertSign if keyUsage is present), the key matching, not expired.
 * Throws InvalidPemError, LocalCaNotCaError, KeyMismatchError, CertExpiredError,
 * UnsupportedKeyError or CertEncodingError. Safe to call concurrently (pure).
 */
export function loadRoot(certPem: string, keyPem: string, now = new Date()): LocalCaRoot {
  const certs = pemBlocks(certPem).filter((b) => b.type === 'CERTIFICATE');
  if (certs.length !== 1) {
    throw new InvalidPemError(`the CA certificate PEM holds ${certs.length} certificates; give exactly one (the root)`);
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certs[0]!.pem);
  } catch (cause) {
    throw new InvalidPemError('the CA certificate does not parse as X.509 (truncated or corrupted PEM?)', { cause });
  }
  const key: KeyObject = parsePrivateKeyPem(keyPem);
  const facts = readIssuerCertificate(cert.raw);
  if (!cert.ca || !facts.isCa) {
    throw new LocalCaNotCaError(
      `the certificate "${cert.subject.replace(/\n/g, ', ')}" is not a CA (no basicConstraints CA:true); ` +
        'give a CA root certificate',
    );
  }
  if (!facts.mayIssue) {
    throw new LocalCaNotCaError('the CA certificate has a keyUsage without keyCertSign, so it may not sign certificates');
  }
  if (!cert.checkPrivateKey(key)) {
    throw new KeyMismatchError('the CA private key does not belong to the CA certificate (check the cert/key pair)');
  }
  const notAfter = new Date(cert.validTo);
  if (notAfter <= now) {
    throw new CertExpiredError(
      `the local CA root expired at ${notAfter.toISOString()}: replace it with \`haproxy-certd ca init --force\``,
    );
  }
  return {
    certPem: certs[0]!.pem,
    keyPem: exportPrivateKeyPem(key),
    issuer: issuerRef(facts.subjectDer, facts.keyId, key),
    notAfter,
    fingerprint: cert.fingerprint256,
    pathLen: facts.pathLen,
  };
}
