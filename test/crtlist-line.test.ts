import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { InvalidNameError } from '../src/core/errors.js';
import { CRT_LIST_OPTION_KEYS, type CertTlsOptions, type CrtListOptions } from '../src/haproxy/crtlist/line.js';
import { crtListLine, crtListLineParts, makeDeployEntry } from '../src/haproxy/deploy/entry.js';
import { crtListAdd } from '../src/haproxy/runtime/client.js';
import { selfSigned, type SelfSigned } from './helpers/certs.js';

/** One value per option and the word HAProxy must get; `satisfies` makes a new option a compile error here. */
const SAMPLES = {
  alpn: { tls: { alpn: ['h2', 'http/1.1'] }, word: 'alpn h2,http/1.1' },
  ciphers: { tls: { ciphers: 'ECDHE+AESGCM:!aNULL:@SECLEVEL=2' }, word: 'ciphers ECDHE+AESGCM:!aNULL:@SECLEVEL=2' },
  ciphersuites: { tls: { ciphersuites: 'TLS_AES_128_GCM_SHA256' }, word: 'ciphersuites TLS_AES_128_GCM_SHA256' },
  curves: { tls: { curves: ['X25519', 'P-256'] }, word: 'curves X25519:P-256' },
  ecdhe: { tls: { ecdhe: 'prime256v1' }, word: 'ecdhe prime256v1' },
  minVersion: { tls: { minVersion: 'TLSv1.2' }, word: 'ssl-min-ver TLSv1.2' },
  maxVersion: { tls: { maxVersion: 'TLSv1.3' }, word: 'ssl-max-ver TLSv1.3' },
  allow0rtt: { tls: { allow0rtt: true }, word: 'allow-0rtt' },
  noCaNames: { tls: { noCaNames: true }, word: 'no-ca-names' },
  clientAuth: { tls: { clientAuth: 'optional' }, word: 'verify optional', clientCa: true },
  caFile: { tls: { clientAuth: 'required' }, word: 'ca-file /certs/ca/x.test.pem', clientCa: true },
} satisfies Record<keyof CrtListOptions, { tls: CertTlsOptions; word: string; clientCa?: boolean }>;

const CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

describe('crt-list line: the file line and the runtime `add ssl crt-list` line are one rendering', () => {
  let cert: SelfSigned;
  before(async () => {
    cert = await selfSigned('x.test');
  });

  const entry = (tls: CertTlsOptions, clientCa = false) =>
    makeDeployEntry('/certs', { id: 'x.test', bundle: cert, sni: ['x.test', '*.y.test', '!no.y.test'], options: tls, caFilePem: clientCa ? CA_PEM : undefined });
  /** What instance.ts sends for an entry, and what files.ts writes for it. */
  const lines = (e: ReturnType<typeof entry>) => ({ runtime: crtListAdd('/certs/crt-list.txt', crtListLineParts(e)).command.payload, file: crtListLine(e) });

  test('every option: same line in the file and at runtime, with its HAProxy word', () => {
    assert.deepEqual(Object.keys(SAMPLES).sort(), [...CRT_LIST_OPTION_KEYS].sort());
    for (const key of CRT_LIST_OPTION_KEYS) {
      const sample: { tls: CertTlsOptions; word: string; clientCa?: boolean } = SAMPLES[key];
      const { runtime, file } = lines(entry(sample.tls, sample.clientCa));
      assert.equal(runtime, file, key);
      assert.ok(file.includes(`[${sample.word}`) || file.includes(` ${sample.word}]`), `${key}: ${file}`);
    }
  });

  test('all options at once: one line, words in a fixed order', () => {
    const all: CertTlsOptions = Object.assign({}, ...Object.values(SAMPLES).map((s) => s.tls));
    const { runtime, file } = lines(entry(all, true));
    assert.equal(runtime, file);
    assert.equal(
      file,
      '/certs/x.test.pem [alpn h2,http/1.1 ciphers ECDHE+AESGCM:!aNULL:@SECLEVEL=2 ciphersuites TLS_AES_128_GCM_SHA256 ' +
        'curves X25519:P-256 ecdhe prime256v1 ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3 allow-0rtt no-ca-names verify required ' +
        'ca-file /certs/ca/x.test.pem] x.test *.y.test !no.y.test',
    );
  });

  test('no options, no brackets; a client CA without verification is not named', () => {
    assert.equal(lines(entry({})).file, '/certs/x.test.pem x.test *.y.test !no.y.test');
    const none = lines(entry({ clientAuth: 'none' }, true));
    assert.equal(none.runtime, none.file);
    assert.equal(none.file, '/certs/x.test.pem [verify none] x.test *.y.test !no.y.test');
  });

  test('a value that would change the line is refused for the file as for the runtime API', () => {
    const bad = entry({ ciphers: 'HIGH] evil.test [ciphers HIGH' });
    assert.throws(() => crtListLine(bad), InvalidNameError);
    assert.throws(() => crtListAdd('/certs/crt-list.txt', crtListLineParts(bad)), InvalidNameError);
  });
});
