import { AttributeTypeAndValue, AttributeValue, Name, RelativeDistinguishedName } from '@peculiar/asn1-x509';
import { derElement, TAG_SEQUENCE, TAG_SET, TAG_UTF8_STRING } from './der.js';
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

// The same OIDs, DER-encoded.
const OID_DER: Record<string, Buffer> = { [OID_CN]: Buffer.from('0603550403', 'hex'), [OID_O]: Buffer.from('060355040a', 'hex') };

/**
 * buildName, DER-encoded: the same bytes, written directly (SEQUENCE OF SET { SEQUENCE { type,
 * UTF8String } }): through the schema library a name costs ~90 µs, on an on-demand handshake's path.
 * Pure.
 */
export function nameDer(dn: DistinguishedName): Buffer {
  const rdns: Buffer[] = [];
  if (dn.organization !== undefined) rdns.push(rdnDer(OID_O, dn.organization));
  if (dn.commonName !== undefined) rdns.push(rdnDer(OID_CN, dn.commonName));
  return derElement(TAG_SEQUENCE, ...rdns);
}

function rdnDer(type: string, value: string): Buffer {
  checkValue(value);
  return derElement(TAG_SET, derElement(TAG_SEQUENCE, OID_DER[type]!, derElement(TAG_UTF8_STRING, Buffer.from(value, 'utf8'))));
}

function checkValue(value: string): void {
  if (value.length === 0 || value.length > MAX_DN_VALUE) {
    throw new CertEncodingError(`a name attribute must have 1-${MAX_DN_VALUE} characters, got ${value.length}`);
  }
}

function rdn(type: string, value: string): RelativeDistinguishedName {
  checkValue(value);
  return new RelativeDistinguishedName([
    new AttributeTypeAndValue({ type, value: new AttributeValue({ utf8String: value }) }),
  ]);
}
