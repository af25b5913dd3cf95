import type { KeyObject } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { Attributes, CertificationRequestInfo } from '@peculiar/asn1-csr';
import {
  Attribute,
  Extension,
  Extensions,
  SubjectAlternativeName,
  SubjectPublicKeyInfo,
  id_ce_subjectAltName,
} from '@peculiar/asn1-x509';
import { InvalidNameError } from '../core/errors.js';
import { derBitString, derElement, TAG_SEQUENCE } from './der.js';
import { buildName, MAX_DN_VALUE } from './dn.js';
import { derToPem } from './pem.js';
import { generalNames } from './san.js';
import { signerFor } from './signing.js';
import { publicKeyInfo } from './spki.js';

export interface BuiltCsr {
  der: Buffer;
  pem: string;
}

// PKCS#9 extensionRequest (RFC 2985 §5.4.2): how a CSR asks for extensions such as the SAN.
const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

/**
 * Builds a PKCS#10 CSR (RFC 2986) for the names, signed by the key: CN = the first name when it
 * fits in 64 characters, every name in a SAN extension request (IP literals as iPAddress).
 * Safe to call concurrently.
 */
export function buildCsr(privateKey: KeyObject, names: readonly string[]): BuiltCsr {
  const unique = [...new Set(names)];
  if (unique.length === 0) throw new InvalidNameError('a CSR needs at least one name');
  const signer = signerFor(privateKey);
  const primary = unique[0]!;
  const subject = buildName(primary.length <= MAX_DN_VALUE ? { commonName: primary } : {});
  const san = new Extension({
    extnID: id_ce_subjectAltName,
    // RFC 5280 §4.2.1.6: with an empty subject the SAN extension must be critical.
    critical: subject.length === 0,
    extnValue: new OctetString(AsnConvert.serialize(new SubjectAlternativeName(generalNames(unique)))),
  });
  const info = new CertificationRequestInfo({
    version: 0,
    subject,
    subjectPKInfo: AsnConvert.parse(publicKeyInfo(privateKey).der, SubjectPublicKeyInfo),
    attributes: new Attributes([
      new Attribute({ type: OID_EXTENSION_REQUEST, values: [AsnConvert.serialize(new Extensions([san]))] }),
    ]),
  });
  const infoDer = new Uint8Array(AsnConvert.serialize(info));
  // CertificationRequest ::= SEQUENCE { info, signatureAlgorithm, signature }, from the signed bytes.
  const der = derElement(TAG_SEQUENCE, infoDer, signer.algorithmDer, derBitString(signer.sign(infoDer)));
  return { der, pem: derToPem(der, 'CERTIFICATE REQUEST') };
}
