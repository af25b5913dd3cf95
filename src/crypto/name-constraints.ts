import { derElement, TAG_SEQUENCE } from './der.js';
import { extensionDer } from './x509.js';
import { ExtendedKeyUsage, id_ce_extKeyUsage, id_kp_serverAuth } from '@peculiar/asn1-x509';

/** DNS subtrees as RFC 5280 §4.2.1.10 writes them: `.gen.test` is every name below gen.test, `www.x.test` that name and below. */
export interface DnsSubtrees {
  permitted: readonly string[];
  excluded: readonly string[];
}

// GeneralSubtrees are IMPLICIT [0] (permitted) and [1] (excluded); a GeneralName's dNSName is
// IMPLICIT [2] IA5String and iPAddress IMPLICIT [7] OCTET STRING (address then mask).
const TAG_PERMITTED = 0xa0;
const TAG_EXCLUDED = 0xa1;
const TAG_DNS_NAME = 0x82;
const TAG_IP_ADDRESS = 0x87;
const OID_NAME_CONSTRAINTS_DER = Buffer.from('0603551d1e', 'hex');
const DER_TRUE = Uint8Array.of(0x01, 0x01, 0xff);
const OCTET_STRING = 0x04;

const subtree = (tag: number, base: Uint8Array) => derElement(TAG_SEQUENCE, derElement(tag, base));
// Every IPv4 and IPv6 address (0.0.0.0/0, ::/0): a forge-CA certificate is for DNS names only.
const ALL_IPS = [subtree(TAG_IP_ADDRESS, new Uint8Array(8)), subtree(TAG_IP_ADDRESS, new Uint8Array(32))];

/**
 * The critical nameConstraints extension, DER: the permitted DNS subtrees, the excluded ones, and
 * every IP address excluded (a certificate with an IP SAN fails under it). Throws for an empty
 * permitted list: without one the constraint would allow every name. Pure.
 */
export function nameConstraintsExtensionDer(c: DnsSubtrees): Buffer {
  if (c.permitted.length === 0) throw new RangeError('nameConstraints need at least one permitted subtree');
  const dns = (name: string) => subtree(TAG_DNS_NAME, Buffer.from(name, 'latin1'));
  const value = derElement(
    TAG_SEQUENCE,
    derElement(TAG_PERMITTED, ...c.permitted.map(dns)),
    derElement(TAG_EXCLUDED, ...c.excluded.map(dns), ...ALL_IPS),
  );
  return derElement(TAG_SEQUENCE, OID_NAME_CONSTRAINTS_DER, DER_TRUE, derElement(OCTET_STRING, value));
}

/** extKeyUsage serverAuth on a CA: clients (OpenSSL, Go, browsers) then refuse what it signs for any other use. */
export const SERVER_AUTH_ONLY_DER = extensionDer(id_ce_extKeyUsage, false, new ExtendedKeyUsage([id_kp_serverAuth]));
