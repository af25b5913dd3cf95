import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, X509Certificate } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { DaemonClient } from '../src/cli/daemon-client.js';
import { KeyRing } from '../src/crypto/secret-box.js';
import { acmeChannel, acmeKeys, AcmeIssuer } from '../src/issuers/acme/index.js';
import { PgStore } from '../src/store/postgres/pg-store.js';
import { stopChild } from './helpers/children.js';
import { startHaproxy, type TestHaproxy } from './helpers/haproxy.js';
import { startHttp01Responder, startPebble, type Http01Responder, type TestPebble } from './helpers/pebble.js';
import { startPostgres, type Postgres } from './helpers/postgres.js';
import { startReplica, TEST_TOKEN, type Replica } from './helpers/replica.js';
import { eventually } from './helpers/stack.js';
import { tempDir } from './helpers/temp-dir.js';

/*
 * What a cluster makes once (the local CA root, the ACME account, HAProxy's default certificate):
 * replicas starting at the same instant on an empty PostgreSQL store each take the cluster lock,
 * look again under it and write fenced with it, so they end with one, the losers using the
 * winner's. Real PostgreSQL (private initdb), real `run` processes and HAProxy, real Pebble.
 */

/** Generous: three node processes starting at once on a loaded 2-core machine. */
const START_WAIT_MS = 120_000;

let server: Postgres;
let dir: string;
let h: TestHaproxy;
let responder: Http01Responder;
let pebble: TestPebble;
const replicas: Replica[] = [];

before(async () => {
  server = await startPostgres();
  dir = tempDir('certd-ha-once-');
  h = await startHaproxy();
  responder = await startHttp01Responder();
  pebble = await startPebble({ httpPort: responder.port });
});

after(async () => {
  await Promise.all(replicas.map((r) => stopChild(r.child, 'SIGKILL')));
  await pebble?.stop();
  await responder?.stop();
  await h?.stop();
  await server?.destroy();
});

/** A fresh database on the private server, and a pool on it for the test's own looks. */
async function freshDatabase(name: string): Promise<{ url: string; db: pg.Pool }> {
  await server.psql(`CREATE DATABASE ${name} OWNER certd`);
  const url = server.url.replace(/\/certd$/, `/${name}`);
  return { url, db: new pg.Pool({ connectionString: url, max: 1 }) };
}

describe('created once cluster-wide, replicas starting at once on an empty store', () => {
  test('three `run` replicas: one local CA root (every leaf any of them issued verifies against it), one default certificate', async () => {
    const { url, db } = await freshDatabase('root_once');
    const sub = join(dir, 'root');
    await mkdir(sub, { recursive: true });
    await writeFile(join(sub, 'store.key'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    try {
      const started = await Promise.all(['ra', 'rb', 'rc'].map((name) => startReplica(name, { dir: sub, url, haproxy: h, store: 'replicas: active-active, lease: 5s' })));
      replicas.push(...started);
      for (const r of started) {
        await eventually(
          async () => {
            if (r.child.exitCode !== null) throw new Error(`${r.name} exited ${r.child.exitCode}: ${r.log().slice(-3_000)}`);
            return /"daemon started"/.test(r.log());
          },
          START_WAIT_MS,
          `${r.name}'s "daemon started" line`,
        );
      }
      // Each replica issues through its own local CA: they all sign with the one root stored.
      const names = started.map((r) => `once-${r.name}.root.test`);
      await Promise.all(started.map((r, i) => new DaemonClient(`http://127.0.0.1:${r.apiPort}`, TEST_TOKEN).call('POST', '/certs', { names: [names[i]] })));
      const blobs = (await db.query<{ key: string; data: Buffer }>(`SELECT key, data FROM certd_blobs WHERE key LIKE 'local-ca/%' OR key LIKE 'haproxy/%' ORDER BY key`)).rows;
      assert.deepEqual(blobs.map((b) => b.key), ['haproxy/default.pem', 'local-ca/internal/root.key', 'local-ca/internal/root.pem']);
      const root = new X509Certificate(blobs.find((b) => b.key === 'local-ca/internal/root.pem')!.data);
      const leaves = (await db.query<{ id: string; cert_pem: string }>('SELECT id, cert_pem FROM certd_certs ORDER BY id')).rows;
      assert.equal(leaves.length, 3);
      for (const leaf of leaves) assert.ok(new X509Certificate(leaf.cert_pem).verify(root.publicKey), `${leaf.id} is signed by the one stored root`);
      // The root was made once: no replica logged a write refused (a loser writing after the winner).
      for (const r of started) assert.doesNotMatch(r.log(), /fenced|FencedWrite/i, `${r.name} tried no fenced write it lost`);
    } finally {
      await Promise.all(replicas.splice(0).map((r) => stopChild(r.child)));
      await db.end();
    }
  });

  test('three replicas\' ACME issuers issuing at once on an empty store: one account registered at Pebble, used by all', async () => {
    const { url, db } = await freshDatabase('acme_once');
    const keyText = randomBytes(32).toString('base64');
    const stores = await Promise.all([0, 1, 2].map(() => PgStore.open({ url, keys: KeyRing.parse(keyText, 'test store.key') })));
    const registered: string[] = [];
    const onEvent = (msg: unknown) => {
      const m = msg as { event: string; url?: string };
      if (m.event === 'account-registered') registered.push(m.url!);
    };
    subscribe(acmeChannel.name, onEvent);
    const issuers = stores.map(
      (store) =>
        new AcmeIssuer({
          id: 'pebble',
          directory: pebble.directoryUrl,
          caBundle: pebble.tlsCaPem,
          challenge: 'http-01',
          solvers: { 'http-01': responder.solver, 'dns-01': pebble.dns01Solver },
          store,
          onWarning: (err) => assert.fail(err),
        }),
    );
    try {
      const bundles = await Promise.all(issuers.map((acme, i) => acme.issue({ names: [`acct-${i}-${process.pid}.example.com`] })));
      assert.equal(bundles.length, 3);
      assert.equal(registered.length, 1, `one account registered at Pebble (got ${JSON.stringify(registered)})`);
      const rows = (await db.query<{ key: string }>(`SELECT key FROM certd_blobs WHERE key LIKE 'acme/%'`)).rows;
      assert.deepEqual(rows.map((r) => r.key), [acmeKeys('pebble').account]);
    } finally {
      unsubscribe(acmeChannel.name, onEvent);
      for (const acme of issuers) acme.close();
      await Promise.all(stores.map((s) => s.close()));
      await db.end();
    }
  });
});
