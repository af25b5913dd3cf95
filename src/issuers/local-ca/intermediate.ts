import { X509Certificate } from 'node:crypto';
import { exportPrivateKeyPem, generateKeyPair } from '../../crypto/keys.js';
import { nameConstraintsExtensionDer, SERVER_AUTH_ONLY_DER, type DnsSubtrees } from '../../crypto/name-constraints.js';
import { buildCertificate } from '../../crypto/x509.js';
import { LocalCaNoIntermediateError } from './errors.js';
import { CLOCK_SKEW_MS, type LocalCaRoot } from './root.js';

/** A CA certificate below the root, with its key: what HAProxy's `ca-sign-file` holds. */
export interface IntermediateBundle {
  certPem: string;
  /** PKCS#8 PEM. Never logged. */
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
}

export interface IntermediateRequest {
  /** The DNS subtrees it may sign for (see ondemand/forge-constraints.ts). */
  constraints: DnsSubtrees;
  validityMs: number;
  /** Named in the error when the root cannot have a CA below it. */
  issuerId: string;
  now?: Date;
}

/**
 * Signs a short-lived intermediate with the root: CA, pathlen 0 (it signs leaves only), critical
 * nameConstraints (the DNS subtrees given, every IP excluded) and EKU serverAuth, so a stolen key
 * can only make TLS server certificates for names on-demand could have issued anyway, until it
 * expires. A fresh ECDSA P-256 key each time. Throws LocalCaNoIntermediateError for a root made
 * with pathlen:0. Safe to call concurrently.
 */
export async function signIntermediate(root: LocalCaRoot, req: IntermediateRequest): Promise<IntermediateBundle> {
  if (root.pathLen === 0) {
    throw new LocalCaNoIntermediateError(
      `the local CA root of issuer "${req.issuerId}" was made with pathlen:0, so it cannot sign the intermediate onDemand.forge ` +
        `needs: make a new root with \`haproxy-certd ca init --issuer ${req.issuerId} --force\` (clients must then trust the new root), ` +
        'or set onDemand.forge: false',
    );
  }
  const now = req.now ?? new Date();
  const { privateKey, publicKey } = await generateKeyPair('ecdsa-p256');
  const notBefore = new Date(Math.floor((now.getTime() - CLOCK_SKEW_MS) / 1000) * 1000);
  const notAfter = new Date(Math.floor(Math.min(now.getTime() + req.validityMs, root.notAfter.getTime()) / 1000) * 1000);
  const cert = buildCertificate({
    subject: { organization: 'haproxy-certd', commonName: `haproxy-certd forge CA ${new X509Certificate(root.certPem).serialNumber.slice(0, 8).toLowerCase()}` },
    publicKey,
    issuer: root.issuer,
    notBefore,
    notAfter,
    isCa: true,
    pathLen: 0,
    caExtensions: [nameConstraintsExtensionDer(req.constraints), SERVER_AUTH_ONLY_DER],
  });
  return { certPem: cert.pem, keyPem: exportPrivateKeyPem(privateKey), notBefore, notAfter };
}
