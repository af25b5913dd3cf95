import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError } from '../src/core/errors.js';
import { parseDuration, tryParseDuration } from '../src/config/duration.js';
import { substituteEnv } from '../src/config/env.js';
import { configFromObject, ConfigValidationError, loadConfig, parseConfigText, type ConfigProblem } from '../src/config/load.js';
import { tempDir } from './helpers/temp-dir.js';

const DIR = '/srv/certd';
const parse = (text: string, env: Record<string, string> = {}) => parseConfigText(text, { file: 'certd.yaml', baseDir: DIR, env });

/** Runs fn, expects a ConfigValidationError and returns its problems. */
function problemsOf(fn: () => unknown): readonly ConfigProblem[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigValidationError, `expected ConfigValidationError, got ${String(err)}`);
    assert.ok(err instanceof ConfigError);
    assert.equal(err.code, 'CERTD_E_CONFIG');
    return err.problems;
  }
  assert.fail('expected the config to be rejected');
}

function onlyProblem(fn: () => unknown): ConfigProblem {
  const problems = problemsOf(fn);
  assert.equal(problems.length, 1, `expected one problem, got:\n${problems.map((p) => JSON.stringify(p)).join('\n')}`);
  return problems[0]!;
}

const MINIMAL = 'haproxy:\n  certDir: ./certs\n';

// DESIGN §3, with its placeholders (…) filled in.
const DESIGN_EXAMPLE = `dataDir: ./data                     # store root: certs, local CA, ACME accounts, locks
store: { type: fs }                 # or { type: postgres, url: postgres://… }
haproxy:
  instances: [ { runtime: "unix:/run/haproxy/admin.sock" }, { runtime: "tcp:127.0.0.1:9999" } ]
  discover: { dns: tasks.haproxy, port: 9999, every: 10s }     # optional
  certDir: /etc/haproxy/certd       # PEMs, crt-list.txt, known.map, acme.map written here
  crtList: /etc/haproxy/certd/crt-list.txt                    # the list your bind lines use
issuers:
  internal: { type: local-ca, keyType: ecdsa-p256, validity: 30d }
  le: { type: acme, directory: https://acme-v02.api.letsencrypt.org/directory, email: ops@example.com,
        challenge: http-01, profile: tlsserver, eab: { kid: kid-1, hmacKey: c2VjcmV0LWtleQ },
        caBundle: ./pebble-ca.pem,   # optional: trust for the ACME server's own TLS (tests, private CAs)
        dns: { rfc2136: { server: 10.0.0.53:53, zone: example.com., tsig: { name: k, algorithm: hmac-sha256, secret: c2VjcmV0 } } } }
certificates:
  - { names: [www.example.com, example.com], issuer: le,
      tls: { alpn: [h2, http/1.1], minVersion: TLSv1.2, clientAuth: required, clientCa: ./clients.pem } }
onDemand: { issuer: internal, allow: ["*.apps.internal"], ask: http://127.0.0.1:9000/allowed,
            rateLimit: { perMinute: 60, burst: 20 }, maxCertificates: 10000 }
sources:
  - { type: directory, path: /etc/letsencrypt/live }
  - { type: http, url: "https://vault.internal/certs/{name}.pem", headers: { Authorization: "Bearer \${T}" }, every: 1h }
api: { listen: 127.0.0.1:9180, token: "\${CERTD_TOKEN}" }
`;

describe('the DESIGN §3 example', () => {
  test('parses, with paths resolved against the config directory and durations in ms', () => {
    const c = parse(DESIGN_EXAMPLE, { T: 'vault-token', CERTD_TOKEN: 'api-token-123' });
    assert.equal(c.dataDir, '/srv/certd/data');
    assert.deepEqual(c.store, { type: 'fs' });
    assert.deepEqual(c.haproxy.instances, [
      { runtime: 'unix:/run/haproxy/admin.sock', name: 'unix:/run/haproxy/admin.sock' },
      { runtime: 'tcp:127.0.0.1:9999', name: 'tcp:127.0.0.1:9999' },
    ]);
    assert.deepEqual(c.haproxy.discover, { dns: 'tasks.haproxy', port: 9999, every: 10_000 });
    assert.equal(c.haproxy.crtList, '/etc/haproxy/certd/crt-list.txt');
    assert.deepEqual(c.issuers.internal, { type: 'local-ca', keyType: 'ecdsa-p256', validity: 30 * 86_400_000 });
    const le = c.issuers.le;
    assert.ok(le?.type === 'acme');
    assert.equal(le.caBundle, '/srv/certd/pebble-ca.pem');
    assert.equal(le.challenge, 'http-01');
    assert.deepEqual(le.dns?.rfc2136, {
      server: '10.0.0.53:53',
      zone: 'example.com',
      tsig: { name: 'k', algorithm: 'hmac-sha256', secret: 'c2VjcmV0' },
    });
    assert.deepEqual(c.certificates[0], {
      names: ['www.example.com', 'example.com'],
      issuer: 'le',
      tls: { alpn: ['h2', 'http/1.1'], minVersion: 'TLSv1.2', clientAuth: 'required', clientCa: '/srv/certd/clients.pem' },
    });
    assert.equal(c.onDemand?.maxCertificates, 10_000);
    assert.deepEqual(c.onDemand?.rateLimit, { perMinute: 60, burst: 20 });
    assert.deepEqual(c.sources[1], {
      type: 'http',
      url: 'https://vault.internal/certs/{name}.pem',
      headers: { Authorization: 'Bearer vault-token' },
      every: 3_600_000,
      timeout: 10_000,
    });
    assert.deepEqual(c.api, { listen: '127.0.0.1:9180', token: 'api-token-123' });
  });

  test('loadConfig reads it from disk and resolves paths against the file, not the cwd', async () => {
    const dir = tempDir('certd-config-');
    await mkdir(join(dir, 'etc'));
    await writeFile(join(dir, 'etc', 'certd.yaml'), DESIGN_EXAMPLE);
    const c = await loadConfig(join(dir, 'etc', 'certd.yaml'), { T: 't', CERTD_TOKEN: 'x' });
    assert.equal(c.dataDir, join(dir, 'etc', 'data'));
    assert.equal(c.certificates[0]?.tls?.clientCa, join(dir, 'etc', 'clients.pem'));
  });
});

describe('defaults', () => {
  test('a minimal config gets every default filled once', () => {
    const c = parse(MINIMAL);
    assert.deepEqual(c, {
      dataDir: '/srv/certd/data',
      store: { type: 'fs' },
      haproxy: { instances: [], certDir: '/srv/certd/certs', crtList: '/srv/certd/certs/crt-list.txt', reconcileEvery: 60_000 },
      issuers: {},
      certificates: [],
      sources: [],
      api: { listen: '127.0.0.1:9180' },
    });
  });

  test('an ACME issuer\'s rateLimit: its own values, and a clear error for none allowed', () => {
    const c = parse(`${MINIMAL}issuers:\n  le: { type: acme, directory: "https://acme.test/dir", rateLimit: { orders: 50, per: 1h, ariExempt: false } }\n`);
    assert.deepEqual(c.issuers.le?.type === 'acme' && c.issuers.le.rateLimit, { orders: 50, per: 3_600_000, ariExempt: false });
    const p = onlyProblem(() => parse(`${MINIMAL}issuers:\n  le: { type: acme, directory: "https://acme.test/dir", rateLimit: { orders: 0 } }\n`));
    assert.match(p.message, /rateLimit\.orders must be at least 1/);
    assert.equal(p.path, 'issuers.le.rateLimit.orders');
  });

  test('issuer, on-demand and source defaults', () => {
    const c = parse(`${MINIMAL}issuers:
  ca: { type: local-ca }
  le: { type: acme, directory: "https://acme.test/dir" }
onDemand: { issuer: ca, allow: [a.example.com], maxCertificates: 5 }
sources: [ { type: directory, path: live } ]
`);
    assert.deepEqual(c.issuers.ca, { type: 'local-ca', keyType: 'ecdsa-p256', validity: 2_592_000_000 });
    assert.deepEqual(c.issuers.le, {
      type: 'acme',
      directory: 'https://acme.test/dir',
      challenge: 'http-01',
      keyType: 'ecdsa-p256',
      rateLimit: { orders: 240, per: 3 * 3_600_000, ariExempt: true },
    });
    assert.deepEqual(c.onDemand, {
      issuer: 'ca',
      allow: ['a.example.com'],
      deny: [],
      askTimeout: 2000,
      rateLimit: { perMinute: 60, burst: 20 },
      maxCertificates: 5,
      maxWait: 10_000,
      forge: false,
    });
    assert.deepEqual(c.sources, [{ type: 'directory', path: '/srv/certd/live', every: 60_000 }]);
  });

  test('an empty value reads as absent', () => {
    const c = parse(`${MINIMAL}onDemand:\nrenewBefore:\n`);
    assert.equal(c.onDemand, undefined);
    assert.equal(c.renewBefore, undefined);
  });
});

describe('errors name file, line, column and key path', () => {
  test('an unknown key deep down points at that key and lists the allowed ones', () => {
    const text = `haproxy:
  certDir: ./certs
issuers:
  le:
    type: acme
    directory: https://acme.test/dir
    eab:
      kid: k
      hmacKey: c2VjcmV0
      hmac_algo: HS256
`;
    const p = onlyProblem(() => parse(text));
    assert.equal(p.file, 'certd.yaml');
    assert.equal(p.line, 10);
    assert.equal(p.col, 7);
    assert.equal(p.path, 'issuers.le.eab.hmac_algo');
    assert.match(p.message, /unknown key "hmac_algo"; allowed here: kid, hmacKey/);
    assert.throws(() => parse(text), { message: /^certd\.yaml:10:7 issuers\.le\.eab\.hmac_algo: unknown key/ });
  });

  test('a misspelt key gets a suggestion', () => {
    const p = onlyProblem(() => parse('haproxy:\n  cert_dir: ./x\n  certDir: ./y\n'));
    assert.match(p.message, /did you mean certDir\?/);
  });

  test('a missing required key points at the mapping that should hold it', () => {
    const p = onlyProblem(() => parse('dataDir: ./d\nhaproxy:\n  instances: []\n'));
    assert.equal(p.path, 'haproxy.certDir');
    assert.equal(p.line, 2);
    assert.match(p.message, /required: expected a string/);
  });

  test('a wrong enum value says what is allowed', () => {
    const p = onlyProblem(() =>
      parse(`${MINIMAL}issuers:\n  ca: { type: local-ca }\ncertificates:\n  - names: [a.example.com]\n    issuer: ca\n    tls:\n      minVersion: TLSv1.4\n`),
    );
    assert.equal(p.path, 'certificates[0].tls.minVersion');
    assert.equal(p.line, 9);
    assert.equal(p.col, 19);
    assert.match(p.message, /expected one of SSLv3, TLSv1\.0, TLSv1\.1, TLSv1\.2, TLSv1\.3; got "TLSv1\.4"/);
  });

  test('an unknown issuer type lists the types', () => {
    const p = onlyProblem(() => parse(`${MINIMAL}issuers:\n  x: { type: vault }\n`));
    assert.equal(p.path, 'issuers.x.type');
    assert.match(p.message, /one of local-ca, acme/);
  });

  test('several problems are reported together, in file order', () => {
    const text = `haproxy:
  certDir: ./certs
  discover: { dns: tasks.haproxy, port: 99999 }
issuers:
  ca: { type: local-ca, validity: forever }
certificates:
  - { names: [ok.example.com], issuer: nope }
api: { listen: "nonsense" }
`;
    const problems = problemsOf(() => parse(text));
    assert.deepEqual(
      problems.map((p) => [p.line, p.path]),
      [
        [3, 'haproxy.discover.port'],
        [5, 'issuers.ca.validity'],
        [7, 'certificates[0].issuer'],
        [8, 'api.listen'],
      ],
    );
    assert.throws(() => parse(text), { message: /^4 problems in the config:\n {2}certd\.yaml:3:/ });
  });

  test('YAML syntax errors and duplicate keys carry their line', () => {
    const dup = onlyProblem(() => parse('haproxy:\n  certDir: a\n  certDir: b\n'));
    assert.equal(dup.line, 3);
    assert.match(dup.message, /YAML syntax/);
    const bad = problemsOf(() => parse('haproxy:\n  certDir: [a, b\n'));
    assert.ok(bad.length >= 1 && bad.every((p) => p.line !== undefined));
  });

  test('an alias bomb is refused, not expanded', () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 8; i++) levels.push(`${'abcdefgh'[i]}: &${'abcdefgh'[i]} [${Array(9).fill(`*${'abcdefgh'[i - 1]}`).join(', ')}]`);
    assert.match(onlyProblem(() => parse(`${MINIMAL}${levels.join('\n')}\n`)).message, /alias/i);
  });

  test('an empty file says what it needs', () => {
    assert.match(onlyProblem(() => parse('# nothing\n')).message, /empty/);
  });

  test('a missing file is a clear ConfigError', async () => {
    await assert.rejects(loadConfig('/nonexistent/certd.yaml'), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.code, 'CERTD_E_CONFIG');
      assert.match(err.message, /config file \/nonexistent\/certd\.yaml not found/);
      assert.match(err.message, /--config/);
      return true;
    });
  });
});

describe('durations', () => {
  test('units and plain seconds parse to milliseconds', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('10s'), 10_000);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('30d'), 2_592_000_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration(90), 90_000);
    assert.equal(parseDuration('1.5'), 1500);
    for (const bad of ['', 'ten', '10 s', '-5s', '5w', '1e3', -1, Number.NaN, null]) {
      assert.equal(tryParseDuration(bad), undefined, `should reject ${String(bad)}`);
    }
    assert.throws(() => parseDuration('soon'), ConfigError);
  });

  test('a bad duration in the config says what is accepted', () => {
    const p = onlyProblem(() => parse(`${MINIMAL}issuers:\n  ca: { type: local-ca, validity: 3 weeks }\n`));
    assert.equal(p.path, 'issuers.ca.validity');
    assert.equal(p.line, 4);
    assert.match(p.message, /500ms, 10s, 5m, 1h, 30d.*got "3 weeks"/);
    assert.match(onlyProblem(() => parse(`${MINIMAL}renewBefore: 0\n`)).message, /above zero/);
    assert.match(onlyProblem(() => parse(`${MINIMAL}renewBefore: [1]\n`)).message, /expected a duration/);
  });

  test('timer durations are capped below what setTimeout can hold', () => {
    const p = onlyProblem(() => parse('haproxy:\n  certDir: c\n  discover: { dns: h.example, port: 1, every: 30d }\n'));
    assert.match(p.message, /too long: at most 24d/);
  });
});

describe('issuer references', () => {
  test('an undeclared issuer lists the declared ones', () => {
    const p = onlyProblem(() =>
      parse(`${MINIMAL}issuers:\n  internal: { type: local-ca }\n  le: { type: acme, directory: "https://a.test/d" }\ncertificates:\n  - { names: [a.example.com], issuer: letsencrypt }\n`),
    );
    assert.equal(p.path, 'certificates[0].issuer');
    assert.equal(p.line, 7);
    assert.match(p.message, /issuer "letsencrypt" is not declared; declared issuers: internal, le/);
  });

  test('with no issuers at all, it says to declare one; onDemand is checked too', () => {
    const problems = problemsOf(() =>
      parse(`${MINIMAL}certificates:\n  - { names: [a.example.com], issuer: ca }\nonDemand: { issuer: ca, allow: [x.example.com], maxCertificates: 1 }\n`),
    );
    assert.deepEqual(problems.map((p) => p.path), ['certificates[0].issuer', 'onDemand.issuer']);
    assert.match(problems[0]!.message, /no issuers are declared/);
  });

  test('the undeclared issuer is reported alongside unrelated errors', () => {
    const problems = problemsOf(() => parse(`${MINIMAL}certificates:\n  - { names: [a.example.com], issuer: ca, keyType: dsa }\n`));
    assert.deepEqual(problems.map((p) => p.path).sort(), ['certificates[0].issuer', 'certificates[0].keyType']);
  });

  test('onDemand.forge needs a local-ca issuer (HAProxy signs from its intermediate)', () => {
    const p = onlyProblem(() =>
      parse(`${MINIMAL}issuers:\n  le: { type: acme, directory: "https://a.test/d" }\nonDemand: { issuer: le, allow: ["*.x.example.com"], maxCertificates: 1, forge: true }\n`),
    );
    assert.equal(p.path, 'onDemand.forge');
    assert.match(p.message, /forge needs a local-ca issuer.*set forge: false or use a local-ca issuer/);
  });

  test('"import" is reserved as an issuer id', () => {
    assert.match(onlyProblem(() => parse(`${MINIMAL}issuers:\n  import: { type: local-ca }\n`)).message, /reserved/);
  });

  test('wildcards need dns-01 on an ACME issuer; dns-01 needs the dns block', () => {
    const p = onlyProblem(() =>
      parse(`${MINIMAL}issuers:\n  le: { type: acme, directory: "https://a.test/d" }\ncertificates:\n  - { names: ["*.example.com"], issuer: le }\n`),
    );
    assert.equal(p.path, 'certificates[0].names[0]');
    assert.match(p.message, /dns-01/);
    assert.match(
      onlyProblem(() => parse(`${MINIMAL}issuers:\n  le: { type: acme, directory: "https://a.test/d", challenge: dns-01 }\n`)).message,
      /rfc2136/,
    );
  });
});

describe('certificate names', () => {
  const hostile: [string, string][] = [
    ['"../x"', 'invalid label'],
    ['"a b"', 'spaces, control'],
    ['"x;y"', 'invalid label'],
    [`"${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}"`, '255 characters'],
    ['"a\\x01b.example.com"', 'control'],
    ['""', 'empty'],
    ['"www.example.com\\nshow info"', 'control'],
    ['"x]y.example.com"', 'invalid label'],
  ];

  test('hostile names are rejected, each naming its entry and line', () => {
    const entries = hostile.map(([name], i) => `  - { names: [ok${i}.example.com, ${name}], issuer: ca }`).join('\n');
    const problems = problemsOf(() => parse(`${MINIMAL}issuers:\n  ca: { type: local-ca }\ncertificates:\n${entries}\n`));
    assert.equal(problems.length, hostile.length);
    problems.forEach((p, i) => {
      assert.equal(p.path, `certificates[${i}].names[1]`);
      assert.equal(p.line, 6 + i);
      assert.ok(p.message.includes(hostile[i]![1]), `${p.message} should mention ${hostile[i]![1]}`);
    });
  });

  test('names are normalized and de-duplicated; IPs and wildcards allowed for a local CA', () => {
    const c = parse(
      `${MINIMAL}issuers:\n  ca: { type: local-ca }\ncertificates:\n  - { names: [WWW.Example.com., www.example.com, "*.example.com", 10.0.0.1, "::1"], issuer: ca }\n`,
    );
    assert.deepEqual(c.certificates[0]?.names, ['www.example.com', '*.example.com', '10.0.0.1', '::1']);
  });

  test('a name in two certificates is rejected', () => {
    const p = onlyProblem(() =>
      parse(`${MINIMAL}issuers:\n  ca: { type: local-ca }\ncertificates:\n  - { names: [a.example.com], issuer: ca }\n  - { names: [b.example.com, A.example.com], issuer: ca }\n`),
    );
    assert.equal(p.path, 'certificates[1].names[1]');
    assert.match(p.message, /also in certificates\[0\]/);
  });

  test('an empty names list is rejected', () => {
    const p = onlyProblem(() => parse(`${MINIMAL}issuers:\n  ca: { type: local-ca }\ncertificates:\n  - { names: [], issuer: ca }\n`));
    assert.equal(p.path, 'certificates[0].names');
  });
});

describe('tls options in the config', () => {
  const withTls = (tls: string) =>
    parse(`${MINIMAL}issuers:\n  ca: { type: local-ca }\ncertificates:\n  - names: [a.example.com]\n    issuer: ca\n    tls: ${tls}\n`);

  test('an option HAProxy 2.6 cannot take at runtime is rejected with the supported list', () => {
    for (const option of ['crl-file: crl.pem', 'verifyhost: a.example.com', 'ocsp-update: "on"', 'no-tls-tickets: true']) {
      const p = onlyProblem(() => withTls(`{ ${option} }`));
      assert.equal(p.path, `certificates[0].tls.${option.split(':')[0]}`);
      assert.equal(p.line, 8);
      assert.match(p.message, /unsupported tls option .*HAProxy 2\.6 accepts only these per certificate/);
      assert.match(p.message, /alpn, ciphers, ciphersuites, curves, ecdhe, minVersion, maxVersion, allow0rtt, noCaNames, clientAuth, clientCa/);
    }
  });

  test("HAProxy's own spelling gets pointed at ours", () => {
    assert.match(onlyProblem(() => withTls('{ ssl-min-ver: TLSv1.2 }')).message, /"ssl-min-ver" \(write it as minVersion\)/);
  });

  test('clientAuth optional/required needs clientCa, and clientCa needs clientAuth', () => {
    for (const mode of ['optional', 'required']) {
      const p = onlyProblem(() => withTls(`{ clientAuth: ${mode} }`));
      assert.equal(p.path, 'certificates[0].tls.clientCa');
      assert.equal(p.line, 8);
      assert.match(p.message, new RegExp(`clientAuth: ${mode} needs clientCa`));
    }
    assert.match(onlyProblem(() => withTls('{ clientCa: ca.pem }')).message, /clientAuth is not/);
    assert.equal(withTls('{ clientAuth: none }').certificates[0]?.tls?.clientAuth, 'none');
  });

  test('values that could inject into a runtime command are rejected at load', () => {
    for (const tls of ['{ ciphers: "HIGH ]; del ssl cert x" }', '{ alpn: ["h2 x"] }', '{ ecdhe: "P-256#" }', '{ ciphersuites: "A;B" }']) {
      assert.equal(problemsOf(() => withTls(tls)).length, 1, tls);
    }
  });

  test('minVersion above maxVersion is rejected', () => {
    assert.match(onlyProblem(() => withTls('{ minVersion: TLSv1.3, maxVersion: TLSv1.2 }')).message, /above maxVersion/);
  });

  test('lists may be written the HAProxy way', () => {
    assert.deepEqual(withTls('{ alpn: "h2,http/1.1", curves: "X25519:P-256" }').certificates[0]?.tls, {
      alpn: ['h2', 'http/1.1'],
      curves: ['X25519', 'P-256'],
    });
  });
});

describe('environment substitution', () => {
  test('${VAR} and ${VAR:-default}, in quoted and plain scalars', () => {
    const c = parse(
      [
        'haproxy:',
        '  certDir: "${CERT_DIR}"',
        '  discover:',
        '    dns: tasks.haproxy',
        '    port: ${PORT}',
        '    every: ${EVERY:-30s}',
        'api: { listen: "127.0.0.1:${API_PORT:-9180}", token: "${TOKEN}" }',
        'onDemand: { issuer: ca, allow: [a.example.com], maxCertificates: "${MAX}" }',
        'issuers: { ca: { type: local-ca } }',
        '',
      ].join('\n'),
      { CERT_DIR: '/etc/haproxy/certd', PORT: '9999', TOKEN: 's3cret-token', MAX: '500' },
    );
    assert.equal(c.haproxy.certDir, '/etc/haproxy/certd');
    assert.equal(c.haproxy.discover?.port, 9999);
    assert.equal(c.haproxy.discover?.every, 30_000);
    assert.equal(c.api.listen, '127.0.0.1:9180');
    assert.equal(c.api.token, 's3cret-token');
    assert.equal(c.onDemand?.maxCertificates, 500);
  });

  test('an unquoted ${VAR} inside { … } gets a hint to quote it', () => {
    const p = onlyProblem(() => parse('haproxy: { certDir: ${DIR} }\n', { DIR: 'x' }));
    assert.equal(p.line, 1);
    assert.match(p.message, /quote \$\{VAR\} references/);
  });

  test('an unset variable without default is an error naming it and its line', () => {
    const p = onlyProblem(() => parse(`${MINIMAL}api:\n  token: "\${CERTD_TOKEN}"\n`));
    assert.equal(p.line, 4);
    assert.equal(p.path, 'api.token');
    assert.match(p.message, /environment variable CERTD_TOKEN is not set/);
    assert.throws(() => parse(`${MINIMAL}api:\n  token: "\${CERTD_TOKEN}"\n`), { message: /^certd\.yaml:4:\d+ api\.token: environment variable CERTD_TOKEN/ });
  });

  test("a variable's value cannot change the document's structure", () => {
    const c = parse(`haproxy:\n  certDir: \${DIR}\n`, { DIR: 'x\nissuers: { evil: { type: local-ca } }' });
    assert.equal(c.haproxy.certDir, '/srv/certd/x\nissuers: { evil: { type: local-ca } }');
    assert.deepEqual(c.issuers, {});
    const d = parse(`haproxy:\n  certDir: \${DIR}\n`, { DIR: 'a: b' });
    assert.equal(d.haproxy.certDir, '/srv/certd/a: b');
  });

  test('an unset variable with an empty default in a plain scalar reads as absent', () => {
    assert.equal(parse(`${MINIMAL}api:\n  token: \${CERTD_TOKEN:-}\n`).api.token, undefined);
  });

  test('substituteEnv: escapes, no re-scanning, malformed references', () => {
    assert.equal(substituteEnv('$${HOME} costs $5', {}), '${HOME} costs $5');
    assert.equal(substituteEnv('${A}', { A: '${B}' }), '${B}');
    assert.equal(substituteEnv('${A:-x}', { A: '' }), 'x');
    assert.equal(substituteEnv('${A}', { A: '' }), '');
    assert.throws(() => substituteEnv('${A', {}), /not closed/);
    assert.throws(() => substituteEnv('${A B}', {}), /not a valid reference/);
    assert.throws(() => substituteEnv('${A:-${B}}', {}), /nests/);
  });
});

describe('other checks', () => {
  test('runtime addresses are normalized; bad ones say the accepted forms', () => {
    const c = parse(
      'haproxy:\n  certDir: c\n  instances: [ { runtime: "unix:run/admin.sock", name: lb1 }, { runtime: "tcp:[::1]:9999" } ]\n',
    );
    assert.deepEqual(c.haproxy.instances, [
      { runtime: 'unix:/srv/certd/run/admin.sock', name: 'lb1' },
      { runtime: 'tcp:[::1]:9999', name: 'tcp:[::1]:9999' },
    ]);
    const p = onlyProblem(() => parse('haproxy:\n  certDir: c\n  instances: [ { runtime: "/run/admin.sock" } ]\n'));
    assert.match(p.message, /unix:\/path\/to\/admin\.sock or tcp:host:port/);
    assert.match(
      onlyProblem(() => parse('haproxy:\n  certDir: c\n  instances: [ { runtime: "tcp:a:1" }, { runtime: "tcp:a:1" } ]\n')).message,
      /listed twice/,
    );
  });

  test('an API reachable from other hosts needs a token', () => {
    const p = onlyProblem(() => parse(`${MINIMAL}api: { listen: "0.0.0.0:9180" }\n`));
    assert.equal(p.path, 'api.token');
    assert.equal(parse(`${MINIMAL}api: { listen: "0.0.0.0:9180", token: abcdef }\n`).api.listen, '0.0.0.0:9180');
  });

  test('a postgres store without keyFile is refused at its line saying how to make one, without echoing its password', () => {
    const p = onlyProblem(() => parse(`${MINIMAL}store: { type: postgres, url: "postgres://u:hunter2@db:5432/certd" }\n`));
    assert.equal(p.path, 'store.keyFile');
    assert.ok(p.line !== undefined);
    assert.match(p.message, /openssl rand -base64 32 > .* && chmod 600/);
    assert.ok(!p.message.includes('hunter2'));
  });

  test('issuer ids follow the one rule the store keys need (lowercase), so `run` never refuses what the schema took', () => {
    const p = onlyProblem(() => parse(`${MINIMAL}issuers:\n  Internal: { type: local-ca }\n`));
    assert.match(p.message, /lowercase/);
  });

  test('header values cannot smuggle another header', () => {
    const p = onlyProblem(() =>
      parse(`${MINIMAL}sources: [ { type: http, url: "https://v.test/{name}", headers: { X-Token: "a\\r\\nHost: evil" } } ]\n`),
    );
    assert.equal(p.path, 'sources[0].headers.X-Token');
  });
});

describe('configFromObject', () => {
  const dir = tempDir('certd-obj-');

  test('validates a config built in code, resolving paths against baseDir', () => {
    const c = configFromObject(
      {
        haproxy: { certDir: 'certs', instances: [{ runtime: 'unix:haproxy.sock' }] },
        issuers: { demo: { type: 'local-ca', validity: 3600 } },
        onDemand: { issuer: 'demo', allow: ['*.demo.test'], maxCertificates: 100 },
      },
      dir,
    );
    assert.equal(c.haproxy.certDir, join(dir, 'certs'));
    assert.equal(c.haproxy.instances[0]?.runtime, `unix:${join(dir, 'haproxy.sock')}`);
    assert.deepEqual(c.issuers.demo, { type: 'local-ca', keyType: 'ecdsa-p256', validity: 3_600_000 });
  });

  test('reports problems by key path, without file positions', () => {
    const problems = problemsOf(() => configFromObject({ haproxy: {}, extra: 1 }, dir));
    assert.deepEqual(problems.map((p) => [p.path, p.line, p.file]), [
      ['haproxy.certDir', undefined, undefined],
      ['extra', undefined, undefined],
    ]);
    assert.throws(() => configFromObject({ haproxy: {}, extra: 1 }, dir), { message: /\n {2}haproxy\.certDir: required/ });
  });
});
