import { createHmac, timingSafeEqual } from 'node:crypto';
import { ConfigError } from '../../core/errors.js';
import { DnsTsigError, DnsUpdateError } from './errors.js';
import { dnsName } from './names.js';
import { additionalRecords, CLASS_ANY, encodeName, readName, TYPE_TSIG, type RecordAt } from './wire.js';

/*
 * TSIG (RFC 8945) for the messages we send and the replies we read. HMAC-SHA256/512 only: the
 * algorithms the config accepts, and the ones RFC 8945 §6 says to implement.
 */

export type TsigAlgorithm = 'hmac-sha256' | 'hmac-sha512';

const DIGEST: Record<TsigAlgorithm, { hash: string; size: number }> = {
  'hmac-sha256': { hash: 'sha256', size: 32 },
  'hmac-sha512': { hash: 'sha512', size: 64 },
};

/** Permitted clock skew in seconds we announce and accept; 300 as RFC 8945 §10 recommends. */
export const TSIG_FUDGE = 300;

/** RFC 8945 §5 / IANA TSIG error codes, by value. */
const TSIG_ERRORS: Record<number, string> = {
  16: 'BADSIG',
  17: 'BADKEY',
  18: 'BADTIME',
  19: 'BADMODE',
  20: 'BADNAME',
  21: 'BADALG',
  22: 'BADTRUNC',
};

/** A shared TSIG key. `name` is a DNS name (already validated); `secret` is the raw key. */
export interface TsigKey {
  readonly name: string;
  readonly algorithm: TsigAlgorithm;
  readonly secret: Buffer;
}

/** The TSIG record of a message, decoded. */
export interface TsigRecord {
  keyName: string;
  algorithm: string;
  /** Seconds since the epoch. */
  timeSigned: number;
  fudge: number;
  mac: Buffer;
  originalId: number;
  /** 0, or a TSIG error code (16 BADSIG…). */
  error: number;
  otherData: Buffer;
  /** Offset of the TSIG record in the message: everything before it is what was signed. */
  start: number;
}

/** A message with its TSIG record appended, and the MAC, which verifying the reply needs. */
export interface SignedMessage {
  message: Buffer;
  mac: Buffer;
}

/**
 * Signs a request (RFC 8945 §4.3.1): the MAC covers the message as given (with its own id,
 * ARCOUNT not counting the TSIG) then the TSIG variables; the TSIG record is appended and ARCOUNT
 * incremented. `timeSigned` (seconds) defaults to now. Pure apart from reading the clock.
 */
export function signRequest(message: Buffer, key: TsigKey, opts: { timeSigned?: number; fudge?: number } = {}): SignedMessage {
  const timeSigned = opts.timeSigned ?? Math.floor(Date.now() / 1000);
  const fudge = opts.fudge ?? TSIG_FUDGE;
  const algorithm = encodeName(`${key.algorithm}.`);
  const mac = hmac(key, [message, tsigVariables(key.name, algorithm, timeSigned, fudge, 0, Buffer.alloc(0))]);

  const fixed = Buffer.alloc(10);
  writeTime(fixed, 0, timeSigned);
  fixed.writeUInt16BE(fudge, 6);
  fixed.writeUInt16BE(mac.length, 8);
  const trailer = Buffer.alloc(6);
  trailer.writeUInt16BE(message.readUInt16BE(0), 0);
  const rdata = Buffer.concat([algorithm, fixed, mac, trailer]);

  const rrHeader = Buffer.alloc(10);
  rrHeader.writeUInt16BE(TYPE_TSIG, 0);
  rrHeader.writeUInt16BE(CLASS_ANY, 2);
  rrHeader.writeUInt16BE(rdata.length, 8);

  const signed = Buffer.concat([message, encodeName(key.name), rrHeader, rdata]);
  signed.writeUInt16BE(message.readUInt16BE(10) + 1, 10);
  return { message: signed, mac };
}

/**
 * Reads the TSIG record, which RFC 8945 §4.2 requires to be the last additional record.
 * Undefined when the message carries none. Throws DnsUpdateError when it does not parse. Pure.
 */
export function readTsig(message: Buffer): TsigRecord | undefined {
  const last = additionalRecords(message).at(-1);
  if (last === undefined || last.type !== TYPE_TSIG) return undefined;
  return decodeTsig(message, last);
}

/**
 * Verifies a reply to a request we signed (RFC 8945 §4.3.2, §5.3): the MAC covers the request
 * MAC (length-prefixed), the reply without its TSIG (ARCOUNT decremented, id set back to the
 * original id), then the TSIG variables. Returns 'unsigned' when the reply has no TSIG record
 * (the caller decides whether that is acceptable) and 'signed' when it verified. Throws
 * DnsTsigError when the server reported a TSIG error or the reply does not verify. Pure apart
 * from reading the clock (`now` in seconds overrides it).
 */
export function verifyResponse(response: Buffer, key: TsigKey, requestMac: Buffer, opts: { now?: number } = {}): 'signed' | 'unsigned' {
  const tsig = readTsig(response);
  if (tsig === undefined) return 'unsigned';
  if (tsig.error !== 0) throw serverTsigError(tsig, key);
  if (tsig.keyName !== key.name || tsig.algorithm !== key.algorithm) {
    throw new DnsTsigError(
      'BADKEY',
      `the DNS server signed its reply with key "${tsig.keyName}" (${tsig.algorithm}), not "${key.name}" (${key.algorithm}): check tsig.name and tsig.algorithm`,
    );
  }
  if (tsig.mac.length !== DIGEST[key.algorithm].size) {
    // RFC 8945 §5.2.2.1 allows truncated MACs, but no server sends them unasked and accepting them weakens the check.
    throw new DnsTsigError('BADTRUNC', `the DNS server's reply carries a ${tsig.mac.length}-byte MAC; expected a full ${key.algorithm} MAC`);
  }
  const unsigned = Buffer.from(response.subarray(0, tsig.start));
  unsigned.writeUInt16BE(tsig.originalId, 0);
  unsigned.writeUInt16BE(unsigned.readUInt16BE(10) - 1, 10);
  const prefix = Buffer.alloc(2);
  prefix.writeUInt16BE(requestMac.length);
  const expected = hmac(key, [
    prefix,
    requestMac,
    unsigned,
    tsigVariables(tsig.keyName, encodeName(`${tsig.algorithm}.`), tsig.timeSigned, tsig.fudge, tsig.error, tsig.otherData),
  ]);
  if (!timingSafeEqual(expected, tsig.mac)) {
    throw new DnsTsigError(
      'BADSIG',
      `the DNS server's reply does not verify with TSIG key "${key.name}": check tsig.secret matches the server's key (and that nothing between us rewrites DNS replies)`,
    );
  }
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - tsig.timeSigned) > tsig.fudge) {
    throw new DnsTsigError(
      'BADTIME',
      `the DNS server's clock and ours differ by ${Math.abs(now - tsig.timeSigned)} s (more than ${tsig.fudge} s): sync the clocks (NTP)`,
    );
  }
  return 'signed';
}

/** The name of a TSIG error code, e.g. 16 → BADSIG. */
export function tsigErrorName(code: number): string {
  return TSIG_ERRORS[code] ?? `TSIG_ERROR_${code}`;
}

function serverTsigError(tsig: TsigRecord, key: TsigKey): DnsTsigError {
  const name = tsigErrorName(tsig.error);
  const what = `the DNS server rejected TSIG key "${key.name}" (${key.algorithm}) with ${name}`;
  switch (name) {
    case 'BADKEY':
      return new DnsTsigError(name, `${what}: it has no key by that name and algorithm; check tsig.name and tsig.algorithm against the server's key`);
    case 'BADSIG':
      return new DnsTsigError(name, `${what}: the signature does not match; check tsig.secret (base64) is the server's secret for that key`);
    case 'BADTIME': {
      // RFC 8945 §5.2.3: on BADTIME the other data is the server's time.
      const serverTime = tsig.otherData.length === 6 ? readTime(tsig.otherData, 0) : undefined;
      const skew =
        serverTime === undefined ? '' : ` (we signed at ${isoTime(tsig.timeSigned)}, the server's time was ${isoTime(serverTime)})`;
      return new DnsTsigError(name, `${what}: our clock and the server's differ by more than ${tsig.fudge} s${skew}; sync the clocks (NTP)`);
    }
    default:
      return new DnsTsigError(name, `${what}: check the key name, algorithm and secret against the server's configuration`);
  }
}

function decodeTsig(message: Buffer, rec: RecordAt): TsigRecord {
  const rdataEnd = rec.rdata + rec.rdlength;
  const alg = readName(message, rec.rdata);
  let pos = alg.end;
  const need = (n: number) => {
    if (pos + n > rdataEnd) throw new DnsUpdateError('malformed TSIG record in the DNS reply');
  };
  need(10);
  const timeSigned = readTime(message, pos);
  const fudge = message.readUInt16BE(pos + 6);
  const macSize = message.readUInt16BE(pos + 8);
  pos += 10;
  need(macSize);
  const mac = Buffer.from(message.subarray(pos, pos + macSize));
  pos += macSize;
  need(6);
  const originalId = message.readUInt16BE(pos);
  const error = message.readUInt16BE(pos + 2);
  const otherLen = message.readUInt16BE(pos + 4);
  pos += 6;
  need(otherLen);
  const otherData = Buffer.from(message.subarray(pos, pos + otherLen));
  return { keyName: rec.name, algorithm: alg.name, timeSigned, fudge, mac, originalId, error, otherData, start: rec.start };
}

/** RFC 8945 §4.3.3: the TSIG fields that are signed, names in canonical form. */
function tsigVariables(keyName: string, algorithm: Buffer, timeSigned: number, fudge: number, error: number, otherData: Buffer): Buffer {
  const classTtl = Buffer.alloc(6);
  classTtl.writeUInt16BE(CLASS_ANY, 0);
  const fields = Buffer.alloc(12);
  writeTime(fields, 0, timeSigned);
  fields.writeUInt16BE(fudge, 6);
  fields.writeUInt16BE(error, 8);
  fields.writeUInt16BE(otherData.length, 10);
  return Buffer.concat([encodeName(keyName), classTtl, algorithm, fields, otherData]);
}

function hmac(key: TsigKey, parts: Buffer[]): Buffer {
  const h = createHmac(DIGEST[key.algorithm].hash, key.secret);
  for (const part of parts) h.update(part);
  return h.digest();
}

/** Time Signed is a 48-bit count of seconds. */
function writeTime(buf: Buffer, offset: number, seconds: number): void {
  buf.writeUInt16BE(Math.floor(seconds / 2 ** 32) & 0xffff, offset);
  buf.writeUInt32BE(seconds % 2 ** 32, offset + 2);
}

function isoTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

function readTime(buf: Buffer, offset: number): number {
  return buf.readUInt16BE(offset) * 2 ** 32 + buf.readUInt32BE(offset + 2);
}

/**
 * A TsigKey from the config's `tsig: { name, algorithm, secret }` (secret in base64 or
 * base64url). Throws ConfigError on a name, algorithm or secret we cannot use. Pure.
 */
export function tsigKeyFromConfig(tsig: { name: string; algorithm: string; secret: string }): TsigKey {
  let name: string;
  try {
    name = dnsName(tsig.name, 'tsig.name');
  } catch (err) {
    throw new ConfigError((err as Error).message, { cause: err });
  }
  if (!(tsig.algorithm in DIGEST)) {
    throw new ConfigError(`tsig.algorithm ${JSON.stringify(tsig.algorithm)} is not supported: use hmac-sha256 or hmac-sha512`);
  }
  const secret = /^[A-Za-z0-9+/_-]+={0,2}$/.test(tsig.secret) ? Buffer.from(tsig.secret, 'base64') : Buffer.alloc(0);
  if (secret.length === 0) {
    throw new ConfigError('tsig.secret must be the key\'s secret in base64, as in the server\'s key statement (tsig-keygen prints one)');
  }
  return { name, algorithm: tsig.algorithm as TsigAlgorithm, secret };
}
