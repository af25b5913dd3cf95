import { certFacts } from '../../src/core/bundle.js';
import { exportPrivateKeyPem, generateKeyPair } from '../../src/crypto/keys.js';
import { buildCertificate, selfSignedIssuer } from '../../src/crypto/x509.js';

export interface SelfSignedOptions {
  /** Default: a minute ago. */
  notBefore?: Date;
  /** Default: 30 days from now. */
  notAfter?: Date;
  /** A CA certificate (basicConstraints CA:TRUE) instead of a leaf. */
  isCa?: boolean;
  /** More SANs after `name`. */
  moreNames?: string[];
}

export interface SelfSigned {
  certPem: string;
  keyPem: string;
  /** Certificate then key, as one combined bundle. */
  pem: string;
  /** As certFacts reports it. */
  fingerprint: string;
}

/** A self-signed ECDSA P-256 certificate for `name` (CN and only SAN), made with src/crypto. */
export async function selfSigned(name: string, o: SelfSignedOptions = {}): Promise<SelfSigned> {
  const { privateKey, publicKey } = await generateKeyPair('ecdsa-p256');
  const subject = { commonName: name };
  const cert = buildCertificate({
    subject,
    subjectAltNames: [name, ...(o.moreNames ?? [])],
    isCa: o.isCa,
    publicKey,
    issuer: selfSignedIssuer(subject, privateKey),
    notBefore: o.notBefore ?? new Date(Date.now() - 60_000),
    notAfter: o.notAfter ?? new Date(Date.now() + 30 * 86_400_000),
  });
  const keyPem = exportPrivateKeyPem(privateKey);
  return { certPem: cert.pem, keyPem, pem: cert.pem + keyPem, fingerprint: certFacts(cert.pem).fingerprint };
}
