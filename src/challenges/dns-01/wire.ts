import { DnsUpdateError } from './errors.js';

/*
 * The few DNS wire-format pieces dns-packet cannot give us: it has no class NONE (RFC 2136
 * deletes need it), and TSIG needs byte offsets inside a message and canonical names.
 */

export const TYPE_SOA = 6;
export const TYPE_TXT = 16;
export const TYPE_TSIG = 250;
export const CLASS_IN = 1;
export const CLASS_NONE = 254;
export const CLASS_ANY = 255;
export const OPCODE_UPDATE = 5;
export const HEADER_LENGTH = 12;
/** The largest message a plain (non-EDNS) UDP exchange carries, RFC 1035 §4.2.1. */
export const UDP_MAX = 512;

/**
 * A name in canonical wire form (RFC 4034 §6.2): lowercase, uncompressed. Only for names already
 * checked by dnsName (ASCII labels of 1-63 bytes). Pure.
 */
export function encodeName(name: string): Buffer {
  const labels = name === '' || name === '.' ? [] : name.replace(/\.$/, '').toLowerCase().split('.');
  const parts: Buffer[] = [];
  for (const label of labels) {
    parts.push(Buffer.from([label.length]), Buffer.from(label, 'ascii'));
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/**
 * Reads a possibly compressed name at `offset`. Returns it lowercase without the trailing dot,
 * and `end`, the offset just past it in the record. Pointers must point backwards, so a hostile
 * reply cannot loop us. Pure.
 */
export function readName(msg: Buffer, offset: number): { name: string; end: number } {
  const labels: string[] = [];
  let pos = offset;
  let end: number | undefined;
  let limit = offset;
  for (;;) {
    const len = byteAt(msg, pos);
    if (len === 0) {
      end ??= pos + 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      const target = ((len & 0x3f) << 8) | byteAt(msg, pos + 1);
      end ??= pos + 2;
      if (target >= limit) throw malformed('a name pointer does not point backwards');
      limit = target;
      pos = target;
      continue;
    }
    if ((len & 0xc0) !== 0) throw malformed('a name has an unknown label type');
    if (pos + 1 + len > msg.length) throw malformed('a name runs past the end');
    labels.push(msg.toString('latin1', pos + 1, pos + 1 + len).toLowerCase());
    pos += 1 + len;
  }
  return { name: labels.join('.'), end };
}

/** Section counts of a message header. */
export interface HeaderCounts {
  qd: number;
  an: number;
  ns: number;
  ar: number;
}

export function readCounts(msg: Buffer): HeaderCounts {
  if (msg.length < HEADER_LENGTH) throw malformed('shorter than a DNS header');
  return { qd: msg.readUInt16BE(4), an: msg.readUInt16BE(6), ns: msg.readUInt16BE(8), ar: msg.readUInt16BE(10) };
}

/** The 4-bit header rcode. */
export function readRcode(msg: Buffer): number {
  if (msg.length < HEADER_LENGTH) throw malformed('shorter than a DNS header');
  return msg.readUInt16BE(2) & 0xf;
}

/** A resource record located in a message, its RDATA not interpreted. */
export interface RecordAt {
  /** Offset of the record's owner name. */
  start: number;
  name: string;
  type: number;
  class: number;
  ttl: number;
  /** Offset of the RDATA. */
  rdata: number;
  rdlength: number;
  /** Offset just past the record. */
  end: number;
}

/**
 * Where the additional section's records sit, walking past the question, answer and authority
 * sections. Throws DnsUpdateError on a message that does not parse. Pure.
 */
export function additionalRecords(msg: Buffer): RecordAt[] {
  const counts = readCounts(msg);
  let pos = HEADER_LENGTH;
  for (let i = 0; i < counts.qd; i++) {
    pos = readName(msg, pos).end + 4;
  }
  for (let i = 0; i < counts.an + counts.ns; i++) {
    pos = readRecord(msg, pos).end;
  }
  const records: RecordAt[] = [];
  for (let i = 0; i < counts.ar; i++) {
    const rec = readRecord(msg, pos);
    records.push(rec);
    pos = rec.end;
  }
  return records;
}

function readRecord(msg: Buffer, start: number): RecordAt {
  const { name, end: fixed } = readName(msg, start);
  if (fixed + 10 > msg.length) throw malformed('a record header runs past the end');
  const rdlength = msg.readUInt16BE(fixed + 8);
  const end = fixed + 10 + rdlength;
  if (end > msg.length) throw malformed('a record runs past the end');
  return {
    start,
    name,
    type: msg.readUInt16BE(fixed),
    class: msg.readUInt16BE(fixed + 2),
    ttl: msg.readUInt32BE(fixed + 4),
    rdata: fixed + 10,
    rdlength,
    end,
  };
}

function byteAt(msg: Buffer, pos: number): number {
  const b = msg[pos];
  if (b === undefined) throw malformed('a name runs past the end');
  return b;
}

function malformed(what: string): DnsUpdateError {
  return new DnsUpdateError(`malformed DNS message from the server: ${what}`);
}

const RCODE_NAMES: Record<number, string> = {
  0: 'NOERROR',
  1: 'FORMERR',
  2: 'SERVFAIL',
  3: 'NXDOMAIN',
  4: 'NOTIMP',
  5: 'REFUSED',
  6: 'YXDOMAIN',
  7: 'YXRRSET',
  8: 'NXRRSET',
  9: 'NOTAUTH',
  10: 'NOTZONE',
};

/** The mnemonic of a DNS rcode (RFC 1035, 2136), e.g. 5 → REFUSED. Pure. */
export function rcodeNameOf(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `RCODE_${rcode}`;
}
