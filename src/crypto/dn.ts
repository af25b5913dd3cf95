import { AsnConvert } from '@peculiar/asn1-schema';
import { AttributeTypeAndValue, AttributeValue, Name, RelativeDistinguishedName } from '@peculiar/asn1-x509';
import { CertEncodingError } from './errors.js';

/** The subject/issuer fields we write. Both optional: a leaf whose name is too long has none. */
export interface DistinguishedName {
  commonName?: string;
  organization?: string;
}

/** ub-common-name and ub-organization-name (RFC 5280 appendix A). */
export const MAX_DN_VALUE = 64;

const OID_CN = '2.5.4.3';
const OID_O = '2.5.4.10';

/**
 * Encodes a DN as UTF8String attributes (RFC 5280 §4.1.2.4 for new certificates), O before CN as
 * tools print it. Throws CertEncodingError for a value over 64 characters. Pure.
 */
export function buildName(dn: DistinguishedName): Name {
  const rdns: RelativeDistinguishedName[] = [];
  if (dn.organization !== undefined) rdns.push(rdn(OID_O, dn.organization));
  if (dn.commonName !== undefined) rdns.push(rdn(OID_CN, dn.commonName));
  return new Name(rdns);
}

/** buildName, DER-encoded. Pure. */
export function nameDer(dn: DistinguishedName): Buffer {
  return Buffer.from(AsnConvert.serialize(buildName(dn)));
}

function rdn(type: string, value: string): RelativeDistinguishedName {
  if (value.length === 0 || value.length > MAX_DN_VALUE) {
    throw new CertEncodingError(`a name attribute must have 1-${MAX_DN_VALUE} characters, got ${value.length}`);
  }
  return new RelativeDistinguishedName([
    new AttributeTypeAndValue({ type, value: new AttributeValue({ utf8String: value }) }),
  ]);
}
