import dnsPacket from 'dns-packet';
import { DnsUpdateError } from './errors.js';
import { CLASS_IN, CLASS_NONE, encodeName, HEADER_LENGTH, OPCODE_UPDATE, TYPE_SOA, TYPE_TXT } from './wire.js';

/*
 * The two messages the DNS-01 solver sends: an RFC 2136 UPDATE of TXT records, and a plain TXT
 * query. Names reaching here were checked by dnsName.
 */

/** One TXT record to add (class IN, with a TTL) or to delete (class NONE, TTL 0: RFC 2136 §2.5.4). */
export interface TxtChange {
  op: 'add' | 'delete';
  name: string;
  value: string;
  /** Seconds; ignored for deletes. */
  ttl: number;
}

/** A character-string holds at most 255 bytes; longer values span several (RFC 8555 verifiers concatenate). */
const CHUNK = 255;
const MAX_VALUE = 1024;

/**
 * Checks a TXT value: printable ASCII, 1 to 1024 characters (ACME values are 43 base64url
 * characters). Throws DnsUpdateError. Pure.
 */
export function checkTxtValue(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_VALUE || !/^[\x20-\x7e]+$/.test(value)) {
    throw new DnsUpdateError(`a TXT value must be 1 to ${MAX_VALUE} printable ASCII characters; got ${JSON.stringify(String(value).slice(0, 80))}`);
  }
  return value;
}

/**
 * An UPDATE message (opcode 5): zone section `zone SOA IN`, no prerequisites, the changes in the
 * update section. Uncompressed, so its bytes are easy to reason about under TSIG. Pure.
 */
export function encodeUpdate(id: number, zone: string, changes: readonly TxtChange[]): Buffer {
  const header = Buffer.alloc(HEADER_LENGTH);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(OPCODE_UPDATE << 11, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(changes.length, 8);
  const zoneSection = Buffer.concat([encodeName(zone), typeClass(TYPE_SOA, CLASS_IN)]);
  const updates = changes.map((change) => {
    const rdata = txtRdata(change.value);
    const fixed = Buffer.alloc(10);
    fixed.writeUInt16BE(TYPE_TXT, 0);
    fixed.writeUInt16BE(change.op === 'add' ? CLASS_IN : CLASS_NONE, 2);
    fixed.writeUInt32BE(change.op === 'add' ? change.ttl : 0, 4);
    fixed.writeUInt16BE(rdata.length, 8);
    return Buffer.concat([encodeName(change.name), fixed, rdata]);
  });
  return Buffer.concat([header, zoneSection, ...updates]);
}

/** A TXT query without recursion desired: we ask the authoritative server about its own data. */
export function encodeTxtQuery(id: number, name: string): Buffer {
  return dnsPacket.encode({ type: 'query', id, flags: 0, questions: [{ type: 'TXT', name, class: 'IN' }] });
}

/** The TXT values served for `name` in a query reply, each character-string list joined. */
export function txtValuesIn(reply: Buffer, name: string): string[] {
  let decoded: dnsPacket.DecodedPacket;
  try {
    decoded = dnsPacket.decode(reply);
  } catch (err) {
    throw new DnsUpdateError(`malformed DNS reply to a TXT query: ${(err as Error).message}`, { cause: err });
  }
  const values: string[] = [];
  for (const answer of decoded.answers ?? []) {
    if (answer.type !== 'TXT' || answer.name.toLowerCase().replace(/\.$/, '') !== name) continue;
    const parts = Array.isArray(answer.data) ? answer.data : [answer.data];
    values.push(parts.map((p) => (typeof p === 'string' ? p : p.toString('latin1'))).join(''));
  }
  return values;
}

function txtRdata(value: string): Buffer {
  const bytes = Buffer.from(value, 'ascii');
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += CHUNK) {
    const chunk = bytes.subarray(i, i + CHUNK);
    parts.push(Buffer.from([chunk.length]), chunk);
  }
  return Buffer.concat(parts);
}

function typeClass(type: number, klass: number): Buffer {
  const buf = Buffer.alloc(4);
  buf.writeUInt16BE(type, 0);
  buf.writeUInt16BE(klass, 2);
  return buf;
}
