import { CertEncodingError } from './errors.js';

/** Where one DER element sits: its tag byte at `start`, its contents from `contentStart` to `end`. */
export interface Tlv {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

/**
 * Reads the element header at `offset`. Only what certificates use: one-byte tags, definite
 * lengths up to 4 bytes. The schema library re-encodes what it parses; this finds the original
 * bytes of a field (a CA's subject, which must be copied exactly into what it signs). Pure.
 */
export function readTlv(der: Uint8Array, offset = 0): Tlv {
  if (offset + 2 > der.length) throw truncated();
  const tag = der[offset]!;
  let length = der[offset + 1]!;
  let p = offset + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 4 || p + n > der.length) throw truncated();
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[p++]!;
  }
  if (p + length > der.length) throw truncated();
  return { tag, start: offset, contentStart: p, end: p + length };
}

/** The elements inside a constructed element. Pure. */
export function childrenOf(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = parent.contentStart; p < parent.end; p = out[out.length - 1]!.end) out.push(readTlv(der, p));
  return out;
}

export const TAG_BOOLEAN = 0x01;
export const TAG_INTEGER = 0x02;
export const TAG_BIT_STRING = 0x03;
export const TAG_OCTET_STRING = 0x04;
export const TAG_UTF8_STRING = 0x0c;
export const TAG_UTC_TIME = 0x17;
export const TAG_GENERALIZED_TIME = 0x18;
export const TAG_SEQUENCE = 0x30;
export const TAG_SET = 0x31;

/** Encodes one element around already-encoded contents (definite length, DER). Pure. */
export function derElement(tag: number, ...contents: Uint8Array[]): Buffer {
  const length = contents.reduce((sum, c) => sum + c.length, 0);
  return Buffer.concat([Uint8Array.of(tag), derLength(length), ...contents]);
}

/** A BIT STRING of whole bytes (signatures): a zero "unused bits" octet, then the bytes. */
export function derBitString(bytes: Uint8Array): Buffer {
  return derElement(TAG_BIT_STRING, Uint8Array.of(0), bytes);
}

function derLength(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

function truncated(): CertEncodingError {
  return new CertEncodingError('DER data is truncated or uses an encoding certificates do not use');
}

/**
 * The serial number of a DER certificate as upper-case hex without leading zeros (how HAProxy's
 * `show ssl cert` prints it, and what survives a reply cut short before its SHA-1 line). Pure.
 */
export function certSerialHex(der: Uint8Array): string {
  const cert = readTlv(der);
  const tbs = readTlv(der, cert.contentStart);
  let field = readTlv(der, tbs.contentStart);
  if (field.tag === 0xa0) field = readTlv(der, field.end); // [0] version comes first when present
  if (field.tag !== TAG_INTEGER) throw new CertEncodingError('certificate has no serial number where X.509 puts it');
  return normalizeSerialHex(Buffer.from(der.subarray(field.contentStart, field.end)).toString('hex'));
}

/** Upper case, no leading zeros: serials compare equal however a tool printed them. Pure. */
export function normalizeSerialHex(hex: string): string {
  return hex.replace(/[:\s]/g, '').replace(/^0+(?=.)/, '').toUpperCase();
}
