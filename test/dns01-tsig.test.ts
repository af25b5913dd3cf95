import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DnsTsigError, DnsUpdateError } from '../src/challenges/dns-01/errors.js';
import { encodeUpdate } from '../src/challenges/dns-01/messages.js';
import { dnsName } from '../src/challenges/dns-01/names.js';
import { readTsig, signRequest, tsigKeyFromConfig, verifyResponse } from '../src/challenges/dns-01/tsig.js';
import { additionalRecords, encodeName, readName } from '../src/challenges/dns-01/wire.js';

/*
 * Vectors captured from BIND 9.18 (Debian 12): requests made by nsupdate and dig -y through a
 * recording UDP proxy to named, and named's replies. Our signature over the same message with the
 * same time must be byte-for-byte theirs, and their replies must verify with our code.
 */
const hex = (...parts: string[]) => Buffer.from(parts.join(''), 'hex');

const SHA256 = tsigKeyFromConfig({ name: 'certd-key', algorithm: 'hmac-sha256', secret: 's5Sh0kMc8TEKYZhi8uXkHBy2YgfSV0pvTEOyLnXDHto=' });
const SHA512 = tsigKeyFromConfig({
  name: 'certd-key-512',
  algorithm: 'hmac-sha512',
  secret: 'Mx2awV85BOVz75Z9l+AbU29rM4k8jgnvOVdApS9ikotnQll978OR4ioF7mK9C7SZYngluWQvZ1yGRn48K9otlg==',
});

const VECTORS = [
  {
    what: 'nsupdate: add TXT, hmac-sha256',
    key: SHA256,
    request: hex(
      '069e28000001000000010001076578616d706c65047465737400000600010f5f61636d652d6368616c6c656e6765c00c',
      '001000010000003c000f0e766563746f722d76616c75652d310963657274642d6b65790000fa00ff00000000003d0b68',
      '6d61632d7368613235360000006b0400ab012c002093eff00dcfd48b4ec526ef5245c30724911c87b07e3e06b3bae3d3',
      '955e5ad387069e00000000',
    ),
    response: hex(
      '069ea8000001000000000001076578616d706c65047465737400000600010963657274642d6b65790000fa00ff000000',
      '00003d0b686d61632d7368613235360000006b0400ab012c00207f6febbbddb7d2477fcc6bdeca6f021ad8bab3e052a3',
      '0d473afe984dba5dfb03069e00000000',
    ),
  },
  {
    what: 'nsupdate: delete TXT (class NONE), hmac-sha512',
    key: SHA512,
    request: hex(
      '059d28000001000000010001076578616d706c65047465737400000600010f5f61636d652d6368616c6c656e6765c00c',
      '001000fe00000000000f0e766563746f722d76616c75652d310d63657274642d6b65792d3531320000fa00ff00000000',
      '005d0b686d61632d7368613531320000006b0400ab012c0040f378fc42e10726525561d2e089989dba46e5ad0c2eeb3a',
      '43cd2944d68aeda1b98c3e43c92a233b249cdb4d4e483590d3a240cf49e8815d206c9bde3f3c6d1dd6059d00000000',
    ),
    response: hex(
      '059da8000001000000000001076578616d706c65047465737400000600010d63657274642d6b65792d3531320000fa00',
      'ff00000000005d0b686d61632d7368613531320000006b0400ab012c00407ddae03afe980ecf95f9ea4b460f87c1f2b7',
      '3cb4ca4fa0422df16a11bc8149e4f67d191221ad4e08e9005f63eda564d9e785c0a02f39214d1bb604170efbdcbd059d',
      '00000000',
    ),
  },
  {
    what: 'dig -y: TXT query with EDNS cookie; compressed reply with SOA and OPT',
    key: SHA256,
    request: hex(
      'a74f002000010000000000020f5f61636d652d6368616c6c656e6765076578616d706c65047465737400001000010000',
      '2904d000000000000c000a00081935f3c92344bb860963657274642d6b65790000fa00ff00000000003d0b686d61632d',
      '7368613235360000006b0400ab012c00202946991836ae121678a6cdb6c926e4d7c811813dd83b41991471458325b27a',
      'f8a74f00000000',
    ),
    response: hex(
      'a74f840300010000000100020f5f61636d652d6368616c6c656e6765076578616d706c6504746573740000100001c01c',
      '000600010000003c0027036e7331c01c0a686f73746d6173746572c01c0000000300000e100000025800015180000000',
      '3c00002904d000000000001c000a00181935f3c92344bb86010000006b0400abb36aa6231bec50b10963657274642d6b',
      '65790000fa00ff00000000003d0b686d61632d7368613235360000006b0400ab012c0020b5013fbeef72952fc7cac0db',
      'c0a9cf4058e8200aa56104a6f4a215e66fb14c2fa74f00000000',
    ),
  },
];

/** named's replies to updates we signed wrongly: unsigned BADSIG/BADKEY, signed BADTIME. */
const SERVER_ERRORS = [
  {
    tsigError: 'BADSIG',
    key: { ...SHA256, secret: Buffer.alloc(32, 7) },
    mac: hex('75bc45f42c8c3c7f0746e893b2f9401022c505415f52a54f58a638ad3e821d75'),
    response: hex(
      '1234a8090001000000000001076578616d706c65047465737400000600010963657274642d6b65790000fa00ff000000',
      '00001d0b686d61632d7368613235360000006b040134012c0000123400100000',
    ),
    hint: /tsig\.secret/,
  },
  {
    tsigError: 'BADKEY',
    key: { ...SHA256, name: 'no-such-key' },
    mac: hex('352a1f9f22f7619423dbb27ffb0d404dd152c96966d0a1a65c8c2bd7cedcbae5'),
    response: hex(
      '1234a8090001000000000001076578616d706c65047465737400000600010b6e6f2d737563682d6b65790000fa00ff00',
      '000000001d0b686d61632d7368613235360000006b040134012c0000123400110000',
    ),
    hint: /tsig\.name and tsig\.algorithm/,
  },
  {
    tsigError: 'BADTIME',
    key: SHA256,
    mac: hex('a36d634ddbe75b3fb6be07b2453e687b6413597a467214871b5bf2527ee08f0b'),
    response: hex(
      '1234a8090001000000000001076578616d706c65047465737400000600010963657274642d6b65790000fa00ff000000',
      '0000430b686d61632d7368613235360000006b03f324012c00201dc944cea111d2232bc51e61dc84245dba94ef4dfdff',
      '102af966473a39b789ae12340012000600006b040134',
    ),
    hint: /clock.*we signed at 2026-11-23T08:02:44\.000Z, the server's time was 2026-11-23T09:02:44\.000Z.*NTP/,
  },
];

function withoutTsig(message: Buffer): Buffer {
  const tsig = readTsig(message);
  assert.ok(tsig);
  const bare = Buffer.from(message.subarray(0, tsig.start));
  bare.writeUInt16BE(bare.readUInt16BE(10) - 1, 10);
  return bare;
}

describe('TSIG against BIND vectors', () => {
  for (const v of VECTORS) {
    it(`signs like BIND: ${v.what}`, () => {
      const theirs = readTsig(v.request);
      assert.ok(theirs);
      const ours = signRequest(withoutTsig(v.request), v.key, { timeSigned: theirs.timeSigned, fudge: theirs.fudge });
      assert.equal(ours.message.toString('hex'), v.request.toString('hex'));
      assert.deepEqual(ours.mac, theirs.mac);
    });

    it(`verifies BIND's reply: ${v.what}`, () => {
      const request = readTsig(v.request)!;
      const now = readTsig(v.response)!.timeSigned;
      assert.equal(verifyResponse(v.response, v.key, request.mac, { now }), 'signed');
    });

    it(`rejects a changed reply, a foreign request MAC and a skewed clock: ${v.what}`, () => {
      const request = readTsig(v.request)!;
      const now = readTsig(v.response)!.timeSigned;
      const tampered = Buffer.from(v.response);
      tampered[3] ^= 0x01; // flips an rcode bit in the header
      assert.throws(() => verifyResponse(tampered, v.key, request.mac, { now }), isTsig('BADSIG'));
      const otherMac = Buffer.from(request.mac);
      otherMac[0] ^= 0xff;
      assert.throws(() => verifyResponse(v.response, v.key, otherMac, { now }), isTsig('BADSIG'));
      assert.throws(() => verifyResponse(v.response, { ...v.key, secret: Buffer.alloc(32, 1) }, request.mac, { now }), isTsig('BADSIG'));
      assert.throws(() => verifyResponse(v.response, v.key, request.mac, { now: now + 301 }), isTsig('BADTIME'));
      assert.equal(verifyResponse(v.response, v.key, request.mac, { now: now - 300 }), 'signed');
    });
  }

  for (const e of SERVER_ERRORS) {
    it(`reports the server's ${e.tsigError} with what to check`, () => {
      assert.throws(
        () => verifyResponse(e.response, e.key, e.mac),
        (err: unknown) => isTsig(e.tsigError)(err) && e.hint.test((err as Error).message),
      );
    });
  }

  it('treats a reply without TSIG as unsigned', () => {
    const bare = withoutTsig(VECTORS[0]!.response);
    assert.equal(verifyResponse(bare, SHA256, readTsig(VECTORS[0]!.request)!.mac), 'unsigned');
  });

  it('rejects a reply signed with another key', () => {
    const v = VECTORS[0]!;
    const now = readTsig(v.response)!.timeSigned;
    assert.throws(() => verifyResponse(v.response, { ...SHA256, name: 'other-key' }, readTsig(v.request)!.mac, { now }), isTsig('BADKEY'));
    assert.throws(() => verifyResponse(v.response, { ...SHA256, algorithm: 'hmac-sha512' }, readTsig(v.request)!.mac, { now }), isTsig('BADKEY'));
  });

  it('writes the 48-bit time signed across both fields', () => {
    const t = 2 ** 32 + 5;
    const signed = signRequest(encodeUpdate(1, 'example.test', []), SHA256, { timeSigned: t });
    assert.equal(readTsig(signed.message)!.timeSigned, t);
  });
});

describe('DNS wire pieces', () => {
  it('encodes an UPDATE: zone SOA IN, add as class IN with TTL, delete as class NONE with TTL 0', () => {
    const msg = encodeUpdate(0xbeef, 'example.test', [
      { op: 'add', name: '_acme-challenge.example.test', value: 'v1', ttl: 60 },
      { op: 'delete', name: '_acme-challenge.example.test', value: 'v2', ttl: 60 },
    ]);
    assert.equal(msg.readUInt16BE(0), 0xbeef);
    assert.equal((msg.readUInt16BE(2) >> 11) & 0xf, 5);
    assert.deepEqual([4, 6, 8, 10].map((o) => msg.readUInt16BE(o)), [1, 0, 2, 0]);
    const zone = readName(msg, 12);
    assert.equal(zone.name, 'example.test');
    assert.deepEqual([msg.readUInt16BE(zone.end), msg.readUInt16BE(zone.end + 2)], [6, 1]);
    const first = readName(msg, zone.end + 4);
    assert.equal(first.name, '_acme-challenge.example.test');
    assert.deepEqual([msg.readUInt16BE(first.end), msg.readUInt16BE(first.end + 2), msg.readUInt32BE(first.end + 4)], [16, 1, 60]);
    const second = readName(msg, first.end + 10 + msg.readUInt16BE(first.end + 8));
    assert.deepEqual([msg.readUInt16BE(second.end), msg.readUInt16BE(second.end + 2), msg.readUInt32BE(second.end + 4)], [16, 254, 0]);
  });

  it('splits a TXT value longer than 255 bytes into character-strings', () => {
    const value = 'a'.repeat(300);
    const msg = encodeUpdate(1, 'example.test', [{ op: 'add', name: 'x.example.test', value, ttl: 60 }]);
    const rr = readName(msg, readName(msg, 12).end + 4);
    assert.equal(msg.readUInt16BE(rr.end + 8), 1 + 255 + 1 + 45);
    assert.equal(msg[rr.end + 10], 255);
    assert.equal(msg[rr.end + 10 + 256], 45);
  });

  it('writes names canonical (lowercase) and reads compressed ones', () => {
    assert.equal(encodeName('Certd-Key.').toString('hex'), '0963657274642d6b657900');
    assert.equal(encodeName('.').toString('hex'), '00');
    const reply = VECTORS[2]!.response;
    assert.deepEqual(
      additionalRecords(reply).map((r) => [r.name, r.type]),
      [['', 41], ['certd-key', 250]],
    );
  });

  it('refuses name pointers that loop or point forward', () => {
    const loop = Buffer.concat([Buffer.alloc(12), Buffer.from([0xc0, 12])]);
    assert.throws(() => readName(loop, 12), DnsUpdateError);
    const forward = Buffer.concat([Buffer.alloc(12), Buffer.from([0xc0, 14, 0])]);
    assert.throws(() => readName(forward, 12), DnsUpdateError);
    assert.throws(() => readName(Buffer.from([5, 0x61]), 0), DnsUpdateError);
  });

  it('accepts only letter, digit, "-" and "_" labels', () => {
    assert.equal(dnsName('_ACME-challenge.Example.test.', 'n'), '_acme-challenge.example.test');
    for (const bad of ['', '.', 'a b.test', 'a;b.test', 'a\nb.test', 'a..test', '.a.test', 'a.test..', 'a/b.test', 'é.test', 'x'.repeat(64) + '.test', 'a\0.test']) {
      assert.throws(() => dnsName(bad, 'n'), { code: 'CERTD_E_INVALID_NAME' }, JSON.stringify(bad));
    }
  });

  it('reads a TSIG key from config and says what is wrong with a bad one', () => {
    assert.equal(SHA256.secret.length, 32);
    assert.throws(() => tsigKeyFromConfig({ name: 'k', algorithm: 'hmac-md5', secret: 'AAAA' }), { code: 'CERTD_E_CONFIG', message: /hmac-sha256 or hmac-sha512/ });
    assert.throws(() => tsigKeyFromConfig({ name: 'k', algorithm: 'hmac-sha256', secret: 'not base64!' }), { code: 'CERTD_E_CONFIG', message: /base64/ });
    assert.throws(() => tsigKeyFromConfig({ name: 'k y', algorithm: 'hmac-sha256', secret: 'AAAA' }), { code: 'CERTD_E_CONFIG' });
  });
});

function isTsig(tsigError: string) {
  return (err: unknown) => err instanceof DnsTsigError && err.code === 'CERTD_E_DNS_TSIG' && err.tsigError === tsigError;
}
