import { AsnConvert } from '@peculiar/asn1-schema';
import {
  BasicConstraints,
  Certificate,
  KeyUsage,
  KeyUsageFlags,
  SubjectKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_keyUsage,
  id_ce_subjectKeyIdentifier,
} from '@peculiar/asn1-x509';
import { childrenOf, readTlv } from './der.js';
import { CertEncodingError } from './errors.js';
import { keyIdentifier } from './spki.js';

/** What an existing certificate says about itself as an issuer of other certificates. */
export interface IssuerCertificateFacts {
  /**
   * Its subject exactly as encoded: the issuer field of what it signs must repeat these bytes,
   * since clients match a leaf's issuer to its CA's subject byte for byte (Go, NSS).
   */
  subjectDer: Buffer;
  /** Its SKI extension, or the RFC 5280 method 1 value when it has none. */
  keyId: Buffer;
  /** basicConstraints cA. */
  isCa: boolean;
  /** basicConstraints pathLenConstraint (undefined: no limit, or not a CA). */
  pathLen?: number;
  /** No keyUsage extension, or one with keyCertSign. */
  mayIssue: boolean;
}

/**
 * Reads the issuer-relevant fields of a DER certificate (e.g. a root an operator supplied).
 * Throws CertEncodingError when it does not decode. Safe to call concurrently (pure).
 */
export function readIssuerCertificate(der: Uint8Array): IssuerCertificateFacts {
  let cert: Certificate;
  let subjectDer: Buffer;
  try {
    cert = AsnConvert.parse(der, Certificate);
    const fields = childrenOf(der, childrenOf(der, readTlv(der))[0]!);
    // version [0] is optional; then serial, signature, issuer, validity, subject.
    const subject = fields[(fields[0]?.tag === 0xa0 ? 1 : 0) + 4]!;
    subjectDer = Buffer.from(der.subarray(subject.start, subject.end));
  } catch (cause) {
    throw new CertEncodingError('the certificate does not decode as X.509', { cause });
  }
  const tbs = cert.tbsCertificate;
  const ext = (id: string) => tbs.extensions?.find((e) => e.extnID === id)?.extnValue.buffer;
  const bc = ext(id_ce_basicConstraints);
  const ku = ext(id_ce_keyUsage);
  const ski = ext(id_ce_subjectKeyIdentifier);
  const basic = bc ? AsnConvert.parse(bc, BasicConstraints) : undefined;
  return {
    subjectDer,
    keyId: ski
      ? Buffer.from(AsnConvert.parse(ski, SubjectKeyIdentifier).buffer)
      : keyIdentifier(new Uint8Array(tbs.subjectPublicKeyInfo.subjectPublicKey)),
    isCa: basic?.cA ?? false,
    pathLen: basic?.cA ? basic.pathLenConstraint : undefined,
    mayIssue: ku ? (AsnConvert.parse(ku, KeyUsage).toNumber() & KeyUsageFlags.keyCertSign) !== 0 : true,
  };
}
