import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { configFromObject } from '../src/config/load.js';
import { forEachLimited } from '../src/core/async.js';
import { silentLogger } from '../src/core/log.js';
import { KeyRing } from '../src/crypto/secret-box.js';
import { assemble } from '../src/daemon/assembly.js';
import { localCaKeys } from '../src/issuers/local-ca/storage.js';
import { FsStore } from '../src/store/fs/fs-store.js';
import { PgStore } from '../src/store/postgres/pg-store.js';
import { runCli } from './helpers/cli.js';
import { stopChild } from './helpers/children.js';
import { startHaproxy, type TestHaproxy } from './helpers/haproxy.js';
import { PG_BIN, startPostgres, type Postgres } from './helpers/postgres.js';
import { startReplica, type Replica } from './helpers/replica.js';
import { eventually, handshake } from './helpers/stack.js';

/*
 * `store migrate --from fs --to postgres` and `store rotate-key` through the real CLI: 1,000
 * local-CA certificates moved without issuing, the same serials served by a `run` on the
 * database afterwards, and a pg_dump that holds no private key.
 */

const COUNT = 1_000;
const KEY_A = randomBytes(32).toString('base64');
const KEY_B = randomBytes(32).toString('base64');
const ACCOUNT = `{"kid":"https://acme.test/acct/1","key":"ACCOUNT-SECRET-${randomBytes(6).toString('hex')}"}`;

let server: Postgres;
let dir: string;
let h: TestHaproxy | undefined;
let daemon: Replica | undefined;
const names = Array.from({ length: COUNT }, (_, i) => `m${i}.migrate.test`);
/** id → serial, as the fs store holds them before the move. */
const serials = new Map<string, string>();
let sampleKey = '';

before(async () => {
  server = await startPostgres();
  dir = await mkdtemp(join(tmpdir(), 'certd-migrate-'));
  await writeFile(join(dir, 'store.key'), `${KEY_A}\n`, { mode: 0o600 });
  // The single-daemon setup being moved: an fs store with certificates, a local CA, an ACME
  // account and an interrupted issue.
  const config = configFromObject({ dataDir: './data-fs', haproxy: { certDir: './certs-fs' }, issuers: { internal: { type: 'local-ca' } } }, dir);
  const fs = await FsStore.open(config.dataDir);
  const { service } = await assemble(config, fs, { log: silentLogger });
  const started = Date.now();
  await forEachLimited(names, 8, async (n) => void (await service.ensure([n], { issuer: 'internal', origin: 'api' })));
  console.log(`${COUNT} local-CA certificates on fs in ${Date.now() - started} ms`);
  await fs.putBlob('acme/le/account.json', ACCOUNT, { secret: true });
  await fs.putPending({ id: 'pending.migrate.test', names: ['pending.migrate.test'], issuer: 'internal', origin: 'api', requestedAt: new Date().toISOString() });
  for (const m of await fs.listCerts()) serials.set(m.id, m.serial);
  sampleKey = (await fs.loadCert(names[0]!))!.keyPem;
  await service.drain();
  await fs.close();
  await writeFile(
    join(dir, 'pg.yaml'),
    `dataDir: ./data-fs\nstore: { type: postgres, url: "${server.url}", keyFile: ./store.key, sslmode: disable }\nhaproxy: { certDir: ./certs-pg }\nissuers: { internal: { type: local-ca } }\n`,
  );
});

after(async () => {
  if (daemon) await stopChild(daemon.child, 'SIGKILL');
  await h?.stop();
  await server?.destroy();
  await rm(dir, { recursive: true, force: true });
});

const open = (keys: string) => PgStore.open({ url: server.url, keys: KeyRing.parse(keys, 'test key') });

describe('store migrate --from fs --to postgres, then store rotate-key', () => {
  test('1,000 certificates, the local CA, an ACME account and a pending issue move without issuing; a second run copies nothing', async () => {
    const started = Date.now();
    const r = await runCli(['--config', join(dir, 'pg.yaml'), 'store', 'migrate', '--from', 'fs', '--to', 'postgres', '--json'], { cwd: dir, timeoutMs: 300_000 });
    assert.equal(r.code, 0, r.stderr);
    console.log(`migrate of ${COUNT} certificates: ${Date.now() - started} ms (process start included)`);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(report.certs, { copied: COUNT, same: 0, keptNewer: [] });
    assert.equal(report.pending, 1);
    assert.equal(report.blobs.copied, 3, 'local CA root cert + key, the ACME account');

    const s = await open(KEY_A);
    try {
      const moved = new Map((await s.listCerts()).map((m) => [m.id, m.serial]));
      assert.deepEqual(moved, serials, 'every certificate with its serial');
      assert.equal((await s.loadCert(names[0]!))?.keyPem, sampleKey);
      assert.equal((await s.getBlob('acme/le/account.json'))?.toString(), ACCOUNT);
      assert.ok(await s.getBlob(localCaKeys('internal').key), 'the local CA key');
      assert.deepEqual((await s.listPending()).map((p) => p.id), ['pending.migrate.test']);
    } finally {
      await s.close();
    }

    const again = await runCli(['--config', join(dir, 'pg.yaml'), 'store', 'migrate', '--from', 'fs', '--to', 'postgres'], { cwd: dir, timeoutMs: 300_000 });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`certificates: 0 copied, ${COUNT} already there`));
    assert.match(again.stdout, /blobs .*: 0 copied, 3 already there/);
  });

  test('a pg_dump holds no private key in clear: no PEM header, no key body, no account secret', async () => {
    const { stdout: dump } = await promisify(execFile)(join(PG_BIN, 'pg_dump'), ['-h', '127.0.0.1', '-p', String(server.port), '-U', 'postgres', 'certd'], { maxBuffer: 256 << 20 });
    const holds = (text: string) => dump.includes(text) || dump.includes(Buffer.from(text).toString('hex'));
    assert.ok(holds(names[0]!), 'the dump is of the migrated database');
    assert.ok(!holds('PRIVATE KEY'), 'no PEM key header');
    const body = sampleKey.split('\n').filter((l) => l !== '' && !l.startsWith('-----'));
    assert.ok(body.length > 0);
    for (const line of body) assert.ok(!holds(line), `no line of a key's base64 body (${line.slice(0, 8)}…)`);
    assert.ok(!holds('ACCOUNT-SECRET'), 'no ACME account secret');
  });

  test('rotate-key: the new key first re-seals everything; afterwards the old key can go', async () => {
    await writeFile(join(dir, 'store.key'), `${KEY_B}\n${KEY_A}\n`, { mode: 0o600 });
    const r = await runCli(['--config', join(dir, 'pg.yaml'), 'store', 'rotate-key', '--json'], { cwd: dir, timeoutMs: 300_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { resealed: COUNT + 3, left: 0 }, 'every key and the three migrated blobs (migrated blobs are all sealed)');
    const again = await runCli(['--config', join(dir, 'pg.yaml'), 'store', 'rotate-key'], { cwd: dir });
    assert.match(again.stdout, /re-sealed 0 secret\(s\); every secret is now sealed with the key file's first key/);

    await writeFile(join(dir, 'store.key'), `${KEY_B}\n`, { mode: 0o600 });
    const s = await open(KEY_B);
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    try {
      assert.equal((await s.loadCert(names[0]!))?.keyPem, sampleKey, 'opens with the new key alone');
      assert.equal((await s.getBlob('acme/le/account.json'))?.toString(), ACCOUNT);
      const ids = (await c.query<{ key_id: string }>('SELECT DISTINCT key_id FROM certd_certs UNION SELECT DISTINCT key_id FROM certd_blobs WHERE key_id IS NOT NULL')).rows.map((x) => x.key_id);
      assert.deepEqual(ids, [KeyRing.parse(KEY_B, 'b').currentId]);
    } finally {
      await c.end();
      await s.close();
    }
  });

  test('`run` on the database serves the same serials as the fs store held, issuing nothing', async () => {
    h = await startHaproxy();
    daemon = await startReplica('after', { dir, url: server.url, haproxy: h });
    await eventually(async () => /"daemon started"/.test(daemon!.log()), 120_000, `"daemon started" (log: ${daemon.log().slice(-2_000)})`);
    const sample = [names[0]!, names[499]!, names[COUNT - 1]!];
    for (const name of sample) {
      await eventually(async () => (await handshake(h!.tlsPort, name)).san.includes(name), 180_000, `HAProxy serving ${name}`);
      assert.equal((await handshake(h.tlsPort, name)).serial, serials.get(name), `${name}: the serial the fs store held`);
    }
    await stopChild(daemon.child);
    const s = await open(KEY_B);
    try {
      const now = new Map((await s.listCerts()).map((m) => [m.id, m.serial]));
      for (const [id, serial] of serials) assert.equal(now.get(id), serial, `${id} not issued again`);
      // The one certificate issued is the interrupted issue the migration carried over.
      assert.deepEqual([...now.keys()].filter((id) => !serials.has(id)), ['pending.migrate.test']);
    } finally {
      await s.close();
    }
  });
});
