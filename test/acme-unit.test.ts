import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { linkTargets } from '../src/issuers/acme/chains.js';
import { ariCertId, jwkThumbprint, publicJwk } from '../src/issuers/acme/index.js';
import { parseRetryAfter } from '../src/issuers/acme/poll.js';
import { parseProblem, problemError } from '../src/issuers/acme/problems.js';
import { tempDir } from './helpers/temp-dir.js';

const run = promisify(execFile);

const dir = tempDir('certd-acme-unit-');

describe('ariCertId (RFC 9773 §4.1)', () => {
  it('matches the RFC example: AKI 69:88:5B:…:C8:D4, serial 0x87654321 → aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE', async () => {
    // An issuer whose SKI is the RFC's keyIdentifier, and a leaf with the RFC's serial, made by openssl.
    const ski = '69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4';
    const f = (name: string) => join(dir, name);
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('ca.key'),
      '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=ARI Test CA', '-addext', `subjectKeyIdentifier=${ski}`,
    ]);
    await run('openssl', [
      'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('leaf.key'),
      '-out', f('leaf.csr'), '-subj', '/CN=ari.example.com',
    ]);
    await writeFile(f('ext.cnf'), 'authorityKeyIdentifier=keyid:always\nsubjectAltName=DNS:ari.example.com\n');
    await run('openssl', [
      'x509', '-req', '-in', f('leaf.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-set_serial', '0x87654321',
      '-days', '2', '-extfile', f('ext.cnf'), '-out', f('leaf.pem'),
    ]);
    assert.equal(ariCertId(await readFile(f('leaf.pem'), 'utf8')), 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
  });

  it('refuses a certificate without an AKI keyIdentifier', async () => {
    const f = (name: string) => join(dir, name);
    await writeFile(f('noaki.cnf'), '[req]\ndistinguished_name=dn\nx509_extensions=v3\n[dn]\n[v3]\nbasicConstraints=CA:FALSE\n');
    await run('openssl', [
      'req', '-x509', '-config', f('noaki.cnf'), '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', f('noaki.key'), '-out', f('noaki.pem'), '-days', '2', '-subj', '/CN=no-aki',
    ]);
    const pem = await readFile(f('noaki.pem'), 'utf8');
    assert.throws(() => ariCertId(pem), /authorityKeyIdentifier/);
  });
});

describe('problem documents → typed errors', () => {
  const cases: [string, string][] = [
    ['rateLimited', 'CERTD_E_ACME_RATE_LIMITED'],
    ['badNonce', 'CERTD_E_ACME_BAD_NONCE'],
    ['unauthorized', 'CERTD_E_ACME_UNAUTHORIZED'],
    ['incorrectResponse', 'CERTD_E_ACME_UNAUTHORIZED'],
    ['dns', 'CERTD_E_ACME_DNS'],
    ['connection', 'CERTD_E_ACME_CONNECTION'],
    ['tls', 'CERTD_E_ACME_CONNECTION'],
    ['rejectedIdentifier', 'CERTD_E_ACME_REJECTED_IDENTIFIER'],
    ['unsupportedIdentifier', 'CERTD_E_ACME_REJECTED_IDENTIFIER'],
    ['caa', 'CERTD_E_ACME_REJECTED_IDENTIFIER'],
    ['externalAccountRequired', 'CERTD_E_ACME_EAB'],
    ['malformed', 'CERTD_E_ACME_MALFORMED'],
    ['badCSR', 'CERTD_E_ACME_MALFORMED'],
    ['serverInternal', 'CERTD_E_ACME'],
    ['orderNotReady', 'CERTD_E_ACME'],
  ];
  for (const [type, code] of cases) {
    it(`${type} → ${code}`, () => {
      const err = problemError({ type: `urn:ietf:params:acme:error:${type}`, detail: 'the CA says why' }, 'new order for x');
      assert.equal(err.code, code);
      assert.equal(err.problemType, type);
      assert.equal(err.detail, 'the CA says why');
      assert.match(err.message, /^new order for x: the CA says why/);
    });
  }

  it('keeps the subproblems and names their identifiers in the message', () => {
    const body = Buffer.from(
      JSON.stringify({
        type: 'urn:ietf:params:acme:error:rejectedIdentifier',
        detail: 'some names are refused',
        subproblems: [
          { type: 'urn:ietf:params:acme:error:rejectedIdentifier', detail: 'blocked by policy', identifier: { type: 'dns', value: 'bad.example' } },
          { notAProblem: true },
        ],
      }),
    );
    const err = problemError(parseProblem(400, body), 'new order');
    assert.equal(err.code, 'CERTD_E_ACME_REJECTED_IDENTIFIER');
    assert.equal(err.subproblems.length, 1);
    assert.match(err.message, /\[bad\.example: blocked by policy\]/);
  });
});

describe('header parsing', () => {
  it('Link rel="alternate": several headers, lists in one header, relative targets, other relations ignored', () => {
    const base = 'https://ca.example/cert/1';
    assert.deepEqual(
      linkTargets(
        [
          '<https://ca.example/cert/1/1>;rel="alternate"',
          '</cert/1/2>; rel=alternate, <https://ca.example/dir>;rel="index"',
          '<2/x>; title="t"; rel="up alternate"',
        ],
        'alternate',
        base,
      ),
      ['https://ca.example/cert/1/1', 'https://ca.example/cert/1/2', 'https://ca.example/cert/2/x'],
    );
  });

  it('Retry-After: seconds, an HTTP date, or nothing usable', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter('Tue, 01 Jan 2030 00:01:00 GMT', now), 60_000);
    assert.equal(parseRetryAfter('Mon, 31 Dec 2029 00:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter(undefined, now), undefined);
  });
});

describe('JWK thumbprint (RFC 7638)', () => {
  it('hashes the required EC members in lexicographic order without whitespace', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicJwk(privateKey);
    const canonical = `{"crv":"P-256","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`;
    assert.equal(jwkThumbprint(jwk), createHash('sha256').update(canonical).digest('base64url'));
  });

  it('refuses account keys other than P-256', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    assert.throws(() => publicJwk(privateKey), (err: Error & { code?: string }) => err.code === 'CERTD_E_UNSUPPORTED_KEY');
  });
});
