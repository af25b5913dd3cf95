import { isIPv4, isIPv6 } from 'node:net';
import { GeneralName } from '@peculiar/asn1-x509';
import { derElement, TAG_SEQUENCE } from './der.js';
import { CertEncodingError } from './errors.js';

/**
 * SAN entries for names: IP literals (v4 and v6) become iPAddress, everything else dNSName.
 * Names are expected validated (core/names.ts). Safe to call concurrently (pure).
 */
export function generalNames(names: readonly string[]): GeneralName[] {
  return names.map((name) => {
    if (isIPv4(name) || isIPv6(name)) return new GeneralName({ iPAddress: canonicalIp(name) });
    return new GeneralName({ dNSName: name });
  });
}

// GeneralName ::= CHOICE { ..., [2] IMPLICIT IA5String dNSName, ..., [7] IMPLICIT OCTET STRING iPAddress }
const TAG_DNS_NAME = 0x82;
const TAG_IP_ADDRESS = 0x87;

/**
 * generalNames as GeneralNames DER, written directly: the same bytes as through the schema
 * library, without its ~70 µs per certificate on an on-demand handshake's path. Pure.
 */
export function generalNamesDer(names: readonly string[]): Buffer {
  return derElement(
    TAG_SEQUENCE,
    ...names.map((name) => {
      if (isIPv4(name) || isIPv6(name)) return derElement(TAG_IP_ADDRESS, ipAddressBytes(name));
      // eslint-disable-next-line no-control-regex
      if (/[^\x00-\x7f]/.test(name)) throw new CertEncodingError(`${JSON.stringify(name)} is not ASCII: give IDNs as punycode`);
      return derElement(TAG_DNS_NAME, Buffer.from(name, 'latin1'));
    }),
  );
}

/** The 4 or 16 address bytes of an IP literal, as iPAddress holds them (RFC 5280 §4.2.1.6). Pure. */
export function ipAddressBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map((part) => Number.parseInt(part, 10)));
  if (!isIPv6(ip)) throw new CertEncodingError(`${JSON.stringify(ip)} is not an IP address`);
  if (ip.includes('%')) {
    throw new CertEncodingError(`IP ${JSON.stringify(ip)} has a zone id, which a certificate cannot hold: drop the %…`);
  }
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = ipAddressBytes(v4[1]!);
    text = `${text.slice(0, v4.index)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  let groups = text.split(':');
  const gap = text.indexOf('::');
  if (gap >= 0) {
    const left = gap === 0 ? [] : text.slice(0, gap).split(':');
    const right = gap + 2 === text.length ? [] : text.slice(gap + 2).split(':');
    groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  }
  const out = Buffer.alloc(16);
  groups.forEach((group, i) => out.writeUInt16BE(Number.parseInt(group, 16), i * 2));
  return out;
}

/**
 * The library's own IPv6 parser misreads embedded IPv4 (::ffff:1.2.3.4) and zone ids, so hand it
 * only forms it parses exactly: dotted IPv4 or eight full hex groups.
 */
function canonicalIp(ip: string): string {
  const bytes = ipAddressBytes(ip);
  if (bytes.length === 4) return [...bytes].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return groups.join(':');
}
