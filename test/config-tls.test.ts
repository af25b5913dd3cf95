import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, InvalidNameError } from '../src/core/errors.js';
import { configFromObject } from '../src/config/load.js';
import { crtListOptionsOf, type TlsOptions } from '../src/config/schema.js';
import { crtListOptionWords } from '../src/haproxy/crtlist/line.js';

/** Config's typed options rendered as crt-list words, the client CA loaded under `caFile`. */
function tlsToCrtListOptions(tls: TlsOptions, caFile?: string): string[] {
  return crtListOptionWords({ ...crtListOptionsOf(tls), caFile });
}

/** TLS options as the loader produces them, so the test covers schema and rendering together. */
function loaded(tls: Record<string, unknown>): TlsOptions {
  const c = configFromObject(
    {
      haproxy: { certDir: 'certs' },
      issuers: { ca: { type: 'local-ca' } },
      certificates: [{ names: ['a.example.com'], issuer: 'ca', tls }],
    },
    '/srv/certd',
  );
  const out = c.certificates[0]?.tls;
  assert.ok(out);
  return out;
}

describe('tls options: config → typed crt-list options → words (haproxy/crtlist/line.ts)', () => {
  test('renders every supported option in HAProxy syntax', () => {
    const tls = loaded({
      alpn: ['h2', 'http/1.1'],
      ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:!aNULL:@SECLEVEL=2',
      ciphersuites: 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256',
      curves: ['X25519', 'P-256'],
      ecdhe: 'prime256v1',
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.3',
      allow0rtt: true,
      noCaNames: true,
      clientAuth: 'required',
      clientCa: './clients.pem',
    });
    assert.equal(tls.clientCa, '/srv/certd/clients.pem');
    assert.deepEqual(tlsToCrtListOptions(tls, 'certd/ca/clients.pem'), [
      'alpn h2,http/1.1',
      'ciphers ECDHE-ECDSA-AES128-GCM-SHA256:!aNULL:@SECLEVEL=2',
      'ciphersuites TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256',
      'curves X25519:P-256',
      'ecdhe prime256v1',
      'ssl-min-ver TLSv1.2',
      'ssl-max-ver TLSv1.3',
      'allow-0rtt',
      'no-ca-names',
      'verify required',
      'ca-file certd/ca/clients.pem',
    ]);
  });

  test('the brief example', () => {
    const tls = loaded({ alpn: ['h2', 'http/1.1'], minVersion: 'TLSv1.2', clientAuth: 'required', clientCa: 'clients.pem' });
    assert.deepEqual(tlsToCrtListOptions(tls, 'clients.pem'), [
      'alpn h2,http/1.1',
      'ssl-min-ver TLSv1.2',
      'verify required',
      'ca-file clients.pem',
    ]);
  });

  test('empty options give no words; false flags are left out; verify none needs no CA', () => {
    assert.deepEqual(tlsToCrtListOptions({}), []);
    assert.deepEqual(tlsToCrtListOptions(loaded({ allow0rtt: false, noCaNames: false })), []);
    assert.deepEqual(tlsToCrtListOptions(loaded({ clientAuth: 'none' }), 'ignored.pem'), ['verify none']);
  });

  test('client verification without a CA file name is refused', () => {
    const tls = loaded({ clientAuth: 'optional', clientCa: 'c.pem' });
    assert.throws(() => tlsToCrtListOptions(tls), (err: unknown) => err instanceof ConfigError && /ca-file/.test(err.message));
    assert.deepEqual(tlsToCrtListOptions(tls, 'c.pem'), ['verify optional', 'ca-file c.pem']);
  });

  test('values built in code that would inject into a runtime command (or the crt-list file) are refused', () => {
    const attempts: [TlsOptions, string?][] = [
      [{ alpn: ['h2 ]; del ssl cert /x'] }],
      [{ alpn: ['h2,http/1.1'] }],
      [{ alpn: [] }],
      [{ ciphers: 'HIGH\nshow ssl cert' }],
      [{ ciphers: 'HIGH;shutdown sessions' }],
      [{ ciphers: 'HIGH#comment' }],
      [{ ciphersuites: 'TLS_AES_128_GCM_SHA256 x' }],
      [{ curves: ['X25519]'] }],
      [{ ecdhe: 'P-256 [verify none]' }],
      [{ minVersion: 'TLSv1.2 verify none' as TlsOptions['minVersion'] }],
      [{ clientAuth: 'required\n' as TlsOptions['clientAuth'] }],
      [{ clientAuth: 'required', clientCa: '/x' }, 'ca file.pem'],
      [{ clientAuth: 'required', clientCa: '/x' }, 'ca.pem;del ssl cert x'],
      [{ clientAuth: 'required', clientCa: '/x' }, 'ca.pem]'],
      [{ clientAuth: 'required', clientCa: '/x' }, '#ca.pem'],
      [{ clientAuth: 'required', clientCa: '/x' }, ''],
    ];
    for (const [tls, ca] of attempts) {
      assert.throws(
        () => tlsToCrtListOptions(tls, ca),
        // Typed-option rules (ConfigError) or the protocol-edge allow-list (InvalidNameError).
        (err: unknown) => (err instanceof ConfigError || err instanceof InvalidNameError) && err.category === 'input',
        JSON.stringify([tls, ca]),
      );
    }
  });

  test('the loader refuses the same values before they reach rendering', () => {
    for (const tls of [
      { alpn: 'h2,http/1.1 x' },
      { ciphers: 'HIGH]' },
      { ciphersuites: 'A\nB' },
      { curves: 'X25519:P 256' },
      { ecdhe: 'a;b' },
    ]) {
      assert.throws(() => loaded(tls), ConfigError, JSON.stringify(tls));
    }
  });
});
