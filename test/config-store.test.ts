import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigValidationError, parseConfigText, type ConfigProblem } from '../src/config/load.js';

const parse = (text: string, env: Record<string, string> = {}) => parseConfigText(`haproxy: { certDir: ./certs }\n${text}`, { file: 'certd.yaml', baseDir: '/srv/certd', env });

function problems(text: string): ConfigProblem[] {
  try {
    parse(text);
  } catch (err) {
    assert.ok(err instanceof ConfigValidationError, String(err));
    return [...err.problems];
  }
  return assert.fail('expected the config to be rejected');
}

const PG = 'store: { type: postgres, url: "postgres://certd@db.example.com:5432/certd", keyFile: ./store.key';

describe('store: { type: postgres }', () => {
  test('defaults: verify-full TLS, pool of 10, 10 s timeouts, active-standby, a 30 s lease; paths against the config dir', () => {
    const s = parse(`${PG} }\n`).store;
    assert.deepEqual(s, {
      type: 'postgres',
      url: 'postgres://certd@db.example.com:5432/certd',
      keyFile: '/srv/certd/store.key',
      sslmode: 'verify-full',
      poolSize: 10,
      connectTimeout: 10_000,
      queryTimeout: 10_000,
      replicas: 'active-standby',
      lease: 30_000,
    });
  });

  test('the password from ${ENV} or a file; TLS options; a lease down to 5 s', () => {
    const s = parse(`${PG}, password: "\${PGPASS}", sslmode: verify-full, ca: ./pg-ca.pem, poolSize: 4, lease: 5s }\n`, { PGPASS: 'hunter2' }).store;
    assert.equal(s.type === 'postgres' && s.password, 'hunter2');
    assert.equal(s.type === 'postgres' && s.ca, '/srv/certd/pg-ca.pem');
    assert.equal(s.type === 'postgres' && s.lease, 5_000);
    const f = parse(`${PG}, passwordFile: /run/secrets/pg, sslmode: disable }\n`).store;
    assert.equal(f.type === 'postgres' && f.passwordFile, '/run/secrets/pg');
  });

  test('bad combinations and values are refused at their key, never echoing the URL', () => {
    const cases: [string, string, RegExp][] = [
      [`${PG}, lease: 2s }`, 'store.lease', /at least 5s/],
      [`${PG}, replicas: active-passive }`, 'store.replicas', /active-standby|active-active/],
      [`${PG}, password: a, passwordFile: /p }`, 'store.passwordFile', /not both/],
      [`${PG}, sslmode: require, ca: ./ca.pem }`, 'store.ca', /verify-full/],
      [`${PG}, sslmode: prefer }`, 'store.sslmode', /disable|require|verify-full/],
      ['store: { type: postgres, url: "mysql://u:hunter2@db/x", keyFile: k }', 'store.url', /postgres:\/\/user@host:port\/database/],
      ['store: { type: postgres, url: "postgres://u:hunter2@db", keyFile: k }', 'store.url', /no database/],
      ['store: { type: postgres, url: "postgres://u:hunter2@db/x?sslmode=disable", keyFile: k }', 'store.url', /store\.sslmode/],
      ['store: { type: postgres, url: "postgres://u:hunter2@db/x", password: b, keyFile: k }', 'store.password', /holds a password already/],
      ['store: { type: postgres, url: "not a url hunter2", keyFile: k }', 'store.url', /not a URL/],
    ];
    for (const [text, path, message] of cases) {
      const p = problems(`${text}\n`);
      assert.equal(p.length, 1, `${text}: ${JSON.stringify(p)}`);
      assert.equal(p[0]!.path, path, text);
      assert.match(p[0]!.message, message, text);
      assert.ok(!p[0]!.message.includes('hunter2'), `${text}: ${p[0]!.message}`);
    }
  });
});
