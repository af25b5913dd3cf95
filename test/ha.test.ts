import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { DaemonClient } from '../src/cli/daemon-client.js';
import type { IssueResult } from '../src/service/cert-service.js';
import { runCli } from './helpers/cli.js';
import { stopChild } from './helpers/children.js';
import { startHaproxy, type TestHaproxy } from './helpers/haproxy.js';
import { startPostgres, type Postgres } from './helpers/postgres.js';
import { cuttableLink, startReplica, TEST_TOKEN, type Replica } from './helpers/replica.js';
import { eventually, freePort, handshake } from './helpers/stack.js';

/*
 * Active/standby on a postgres store, through the real CLI: `run` processes, a real HAProxy, a
 * private PostgreSQL (test/helpers/postgres.ts), kill -9, a partition, an outage.
 */

const LEASE_MS = 5_000;
/** Generous: a loaded CI machine starts a node process in seconds, not milliseconds. */
const START_WAIT_MS = 90_000;

let server: Postgres;
let dir: string;
let dbs = 0;
const replicas: Replica[] = [];

async function freshDatabase(): Promise<string> {
  const name = `ha${dbs++}`;
  await server.psql(`CREATE DATABASE ${name} OWNER certd`);
  return server.url.replace(/\/certd$/, `/${name}`);
}

async function replica(name: string, o: { url: string; haproxy: TestHaproxy; store?: string; names?: string[] }): Promise<Replica> {
  const r = await startReplica(name, { dir, ...o });
  replicas.push(r);
  return r;
}

const started = (r: Replica) => eventually(async () => /"daemon started"/.test(r.log()), START_WAIT_MS, `${r.name}'s "daemon started" log line (log so far: ${r.log().slice(-2_000)})`);

async function servedSerial(h: TestHaproxy, name: string): Promise<string> {
  let serial = '';
  await eventually(
    async () => {
      const s = await handshake(h.tlsPort, name);
      serial = s.serial;
      return s.san.includes(name);
    },
    START_WAIT_MS,
    `HAProxy serving ${name}`,
  );
  return serial;
}

before(async () => {
  server = await startPostgres();
  dir = await mkdtemp(join(tmpdir(), 'certd-ha-'));
  await writeFile(join(dir, 'store.key'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
});

after(async () => {
  await Promise.all(replicas.map((r) => stopChild(r.child, 'SIGKILL')));
  await server?.destroy();
  await rm(dir, { recursive: true, force: true });
});

describe('bad input at start: exit 2 (config) or 1 naming the problem, no stack trace', () => {
  /** `run` with this store line; returns its exit and stderr. */
  async function runWith(store: string): Promise<{ code: number | null; stderr: string }> {
    const file = join(dir, `bad-${randomBytes(4).toString('hex')}.yaml`);
    await writeFile(file, `dataDir: ./data-bad\nstore: ${store}\nhaproxy: { certDir: ./certs-bad }\napi: { listen: "127.0.0.1:${await freePort()}" }\n`);
    const r = await runCli(['--config', file, 'run'], { cwd: dir, timeoutMs: 60_000 });
    assert.doesNotMatch(r.stderr, /\n\s+at /, `no stack trace: ${r.stderr}`);
    return r;
  }

  test('a URL that is not postgres://, or a store without keyFile: exit 2 at the config line', async () => {
    let r = await runWith('{ type: postgres, url: "http://u:hunter2@db/x", keyFile: ./store.key }');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /store\.url.*postgres:\/\/user@host:port\/database/s);
    assert.ok(!r.stderr.includes('hunter2'), 'the password is never shown');
    r = await runWith(`{ type: postgres, url: "${server.url}" }`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /store\.keyFile.*openssl rand -base64 32 > .*chmod 600/s);
  });

  test('a key file that does not exist: exit 2 saying how to make one', async () => {
    const r = await runWith(`{ type: postgres, url: "${server.url}", keyFile: ./no-such.key, sslmode: disable }`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /store\.keyFile .*no-such\.key cannot be read \(ENOENT\): make one with `openssl rand/);
  });

  test('an unreachable server: exit 1 naming host:port; a database that does not exist: exit 2 naming it', async () => {
    const port = await freePort(); // nothing listens there
    let r = await runWith(`{ type: postgres, url: "postgres://certd@127.0.0.1:${port}/certd", keyFile: ./store.key, sslmode: disable, connectTimeout: 3s }`);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`PostgreSQL at 127\\.0\\.0\\.1:${port}/certd is not answering.*CERTD_E_STORE_UNAVAILABLE`));
    r = await runWith(`{ type: postgres, url: "${server.url.replace(/\/certd$/, '/nosuchdb')}", keyFile: ./store.key, sslmode: disable }`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /database "nosuchdb" does not exist: create it/);
  });

  test('a wrong password: exit 2 saying the login was refused, without the password; the right one from passwordFile gets in', async () => {
    // A role that must log in with a password (the rest of the test server trusts loopback).
    await server.psql(`CREATE ROLE certd_pw LOGIN PASSWORD 'right-pw'`);
    await server.psql('CREATE DATABASE pw OWNER certd_pw');
    const hba = join(server.dataDir, 'pg_hba.conf');
    await writeFile(hba, `host all certd_pw 127.0.0.1/32 scram-sha-256\n${await readFile(hba, 'utf8')}`);
    await server.psql('SELECT pg_reload_conf()');
    const url = `postgres://certd_pw@127.0.0.1:${server.port}/pw`;
    const r = await runWith(`{ type: postgres, url: "${url}", password: wrong-pw-hunter2, keyFile: ./store.key, sslmode: disable }`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /PostgreSQL at 127\.0\.0\.1:\d+\/pw: the server refused the login .*check the user in store\.url and store\.password/);
    assert.ok(!r.stderr.includes('hunter2'));
    await writeFile(join(dir, 'pg-password'), 'right-pw\n', { mode: 0o600 });
    const file = join(dir, 'pw.yaml');
    await writeFile(file, `dataDir: ./data-pw\nstore: { type: postgres, url: "${url}", passwordFile: ./pg-password, keyFile: ./store.key, sslmode: disable }\nhaproxy: { certDir: ./certs-pw }\n`);
    const ok = await runCli(['--config', file, 'store', 'rotate-key'], { cwd: dir });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /re-sealed 0 secret\(s\)/);
  });

  test('sslmode verify-full against a server without TLS: exit 2 saying what to set', async () => {
    const r = await runWith(`{ type: postgres, url: "${server.url}", keyFile: ./store.key }`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /does not offer TLS: enable ssl on the server, or set store\.sslmode: disable/);
  });

  test('a schema newer than the binary: refused, saying which version it needs', async () => {
    const url = await freshDatabase();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query('CREATE TABLE certd_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now()); INSERT INTO certd_schema (version) VALUES (99)');
    await c.end();
    const r = await runWith(`{ type: postgres, url: "${url}", keyFile: ./store.key, sslmode: disable }`);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /store schema is version 99, newer than this haproxy-certd knows \(2\): run a haproxy-certd that knows schema 99.*CERTD_E_STORE_SCHEMA/);
  });
});

describe('active/standby: one writer, takeover within 2x the lease', () => {
  let h: TestHaproxy;
  before(async () => {
    h = await startHaproxy();
  });
  after(() => h?.stop());

  test('a second `run` stands by naming the holder, serves nothing, and takes over after kill -9 of the active', async () => {
    const url = await freshDatabase();
    const a = await replica('a', { url, haproxy: h, store: `lease: ${LEASE_MS / 1000}s`, names: ['a.ha.test'] });
    await started(a);
    const before = await servedSerial(h, 'a.ha.test');

    const b = await replica('b', { url, haproxy: h, store: `lease: ${LEASE_MS / 1000}s`, names: ['a.ha.test'] });
    await eventually(async () => new RegExp(`standing by: the store is claimed by the active daemon \\(pid ${a.child.pid} on host `).test(b.log()), START_WAIT_MS, `b's "standing by" line naming a (pid ${a.child.pid}); log: ${b.log()}`);
    // Standing by: no API, no HAProxy writes, still running a while later.
    await new Promise((r) => setTimeout(r, LEASE_MS));
    assert.equal(b.child.exitCode, null, 'the standby does not exit');
    assert.doesNotMatch(b.log(), /daemon started/);
    assert.equal(await new DaemonClient(`http://127.0.0.1:${b.apiPort}`, TEST_TOKEN).isUp(), false, 'a standby opens no API port');

    const killedAt = Date.now();
    a.child.kill('SIGKILL');
    await started(b);
    const tookOver = b.loggedAt(/takes over the store/);
    assert.ok(tookOver !== undefined, b.log());
    const ms = tookOver - killedAt;
    console.log(`takeover ${ms} ms after kill -9 (lease ${LEASE_MS} ms)`);
    assert.ok(ms <= 2 * LEASE_MS, `taken over within 2x the lease: ${ms} ms`);

    // Nothing was issued again, and the new active one serves and issues.
    assert.equal(await servedSerial(h, 'a.ha.test'), before, 'the same certificate after the takeover');
    const issued = await new DaemonClient(`http://127.0.0.1:${b.apiPort}`, TEST_TOKEN).call<IssueResult>('POST', '/certs', { names: ['b.ha.test'] });
    assert.equal(issued.issued, true);
    await servedSerial(h, 'b.ha.test');
    await stopChild(b.child);
  });

  test('an active daemon cut off from PostgreSQL stops at its lease (fencing), before the standby takes over', async () => {
    const url = await freshDatabase();
    const link = await cuttableLink(server.port);
    try {
      const viaLink = url.replace(`:${server.port}/`, `:${link.port}/`);
      const a = await replica('fa', { url: viaLink, haproxy: h, store: `lease: ${LEASE_MS / 1000}s`, names: ['f.ha.test'] });
      await started(a);
      await servedSerial(h, 'f.ha.test');
      const b = await replica('fb', { url, haproxy: h, store: `lease: ${LEASE_MS / 1000}s`, names: ['f.ha.test'] });
      await eventually(async () => /standing by/.test(b.log()), START_WAIT_MS, `fb's "standing by" line; log: ${b.log()}`);

      const cutAt = Date.now();
      link.cut(); // a partition: a still reaches HAProxy, not the database
      await started(b);
      const lostAt = a.loggedAt(/store claim is lost/);
      const tookOver = b.loggedAt(/takes over the store/);
      assert.ok(lostAt !== undefined, `a logged the lost claim: ${a.log().slice(-3_000)}`);
      assert.ok(tookOver !== undefined);
      console.log(`partitioned active stopped ${lostAt - cutAt} ms after the cut; standby took over ${tookOver - cutAt} ms after it`);
      assert.ok(lostAt <= tookOver, `the old active stopped writing (${lostAt}) before the new one started (${tookOver})`);
      assert.ok(lostAt - cutAt <= LEASE_MS + 1_000, `stopped within its lease: ${lostAt - cutAt} ms`);
      assert.equal(await Promise.race([a.exited, new Promise((r) => setTimeout(() => r('running'), START_WAIT_MS))]), 1, 'the fenced daemon exits 1');
      assert.match(a.log(), /lock daemon \(token \d+\) is lost: the database could not confirm it before its lease ran out/);
      await servedSerial(h, 'f.ha.test');
      await stopChild(b.child);
    } finally {
      await link.close();
    }
  });

  test('PostgreSQL stopped ~10 s under a running daemon: said loudly, HAProxy serves, issuance 503, back within 5 s, no lock stuck', async () => {
    const url = await freshDatabase();
    const a = await replica('da', { url, haproxy: h, names: ['d.ha.test'] });
    await started(a);
    const serial = await servedSerial(h, 'd.ha.test');
    const api = new DaemonClient(`http://127.0.0.1:${a.apiPort}`, TEST_TOKEN);

    await server.stop();
    const downAt = Date.now();
    let failed = 0;
    let handshakes = 0;
    try {
      const res = await fetch(`http://127.0.0.1:${a.apiPort}/v1/certs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ names: ['new.ha.test'] }),
      });
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(res.status, 503, JSON.stringify(body));
      assert.equal(body.error.code, 'CERTD_E_STORE_UNAVAILABLE');
      assert.match(body.error.message, /PostgreSQL at 127\.0\.0\.1:\d+\/ha\d+ is not answering.*HAProxy keeps serving what it has/);
      const cli = await runCli(['--config', a.configFile, 'issue', 'new2.ha.test'], { cwd: dir });
      assert.equal(cli.code, 1, cli.stderr);
      assert.match(cli.stderr, /not answering.*CERTD_E_STORE_UNAVAILABLE/);
      const health = (await (await fetch(`http://127.0.0.1:${a.apiPort}/healthz`)).json()) as { ok: boolean; store: { ok: boolean; downSince?: string; error?: string } };
      assert.equal(health.ok, true, 'the daemon itself is fine');
      assert.equal(health.store.ok, false, '/healthz says the store is down');
      assert.match(health.store.error ?? '', /not answering/);
      while (Date.now() - downAt < 10_000) {
        handshakes++;
        const s = await handshake(h.tlsPort, 'd.ha.test').catch(() => undefined);
        if (s?.serial !== serial) failed++;
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      await server.start();
    }
    const upAt = Date.now();
    assert.equal(failed, 0, `${failed}/${handshakes} handshakes for a known name failed during the outage`);
    assert.match(a.log(), /"level":50.*PostgreSQL at 127\.0\.0\.1:\d+\/ha\d+ (is not answering|closed a connection)/, 'the outage is logged as an error');
    await eventually(async () => (await api.call<IssueResult>('POST', '/certs', { names: ['new.ha.test'] }, 10_000)).issued, 30_000, 'issuance after the database came back');
    const back = Date.now() - upAt;
    console.log(`issuance works again ${back} ms after the database's return`);
    assert.ok(back <= 5_000, `resumed within 5 s: ${back} ms`);
    await servedSerial(h, 'new.ha.test');
    assert.deepEqual(await (await fetch(`http://127.0.0.1:${a.apiPort}/healthz`)).json(), { ok: true, store: { ok: true } });
    assert.match(a.log(), /PostgreSQL at 127\.0\.0\.1:\d+\/ha\d+ answers again/);
    assert.equal(a.child.exitCode, null, 'the daemon rode out the outage (its lease outlasted it)');
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const locks = (await c.query<{ key: string }>('SELECT key FROM certd_locks WHERE expires_at > now() ORDER BY key')).rows.map((r) => r.key);
      assert.deepEqual(locks, ['daemon'], 'only the daemon claim is held: no lock left stuck');
    } finally {
      await c.end();
    }
    await stopChild(a.child);
  });
});
