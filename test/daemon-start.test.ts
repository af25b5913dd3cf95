import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { configFromObject } from '../src/config/load.js';
import { silentLogger } from '../src/core/log.js';
import { Daemon } from '../src/daemon/daemon.js';
import { freePort } from './helpers/ports.js';
import { seedCerts, seededName } from './helpers/status-certs.js';
import { tempDir } from './helpers/temp-dir.js';

const SEEDED = 30;

describe('daemon start: the API reads from the catalog before the start is done; writes wait', () => {
  const dir = tempDir('certd-daemon-start-');
  let dns: Socket;
  let daemon: Daemon | undefined;
  let starting: Promise<Daemon>;
  let base: string;
  let token: string;
  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

  before(async () => {
    await seedCerts(join(dir, 'data'), SEEDED);
    // A DNS server that takes every query and never answers: the daemon's discovery lookup (a
    // late start step, after the API serves reads) waits its timeout, a window of a few seconds.
    dns = createSocket('udp4');
    dns.bind(0, '127.0.0.1');
    await once(dns, 'listening');
    const asked = once(dns, 'message');
    const apiPort = await freePort();
    token = 'start-test-token-0123456789abcdef';
    const config = configFromObject(
      {
        dataDir: './data',
        haproxy: { instances: [], certDir: './certs', discover: { dns: 'tasks.start.test', port: 9999, every: '1h', server: `127.0.0.1:${dns.address().port}` } },
        api: { listen: `127.0.0.1:${apiPort}`, token },
      },
      dir,
    );
    base = `http://127.0.0.1:${apiPort}`;
    starting = Daemon.start(config, { log: silentLogger });
    starting.then((d) => (daemon = d)).catch(() => undefined);
    await Promise.race([asked, starting.then(() => assert.fail('the start ended before its discovery lookup'))]);
  });
  after(async () => {
    await (daemon ?? (await starting.catch(() => undefined)))?.stop();
    dns.close();
  });

  test('during the start: reads answer (paged), writes and /healthz get 503 CERTD_E_NOT_READY', async () => {
    assert.equal(daemon, undefined, 'still starting');
    const res = await call('GET', '/v1/certs?limit=10');
    assert.equal(res.status, 200);
    const page = (await res.json()) as { certs: { id: string }[]; next?: string; stored: number };
    assert.deepEqual([page.certs.length, page.stored, typeof page.next], [10, SEEDED, 'string']);
    const status = (await (await call('GET', '/v1/status')).json()) as { counts: { stored: number } };
    assert.equal(status.counts.stored, SEEDED);
    const write = await call('POST', '/v1/certs', { names: ['during.start.test'] });
    assert.equal(write.status, 503);
    assert.equal(write.headers.get('retry-after'), '1');
    assert.equal(((await write.json()) as { error: { code: string } }).error.code, 'CERTD_E_NOT_READY');
    assert.equal((await fetch(`${base}/healthz`)).status, 503, 'not healthy before the start is done');
    assert.equal(daemon, undefined, 'all of this inside the start');
  });

  test('once started: writes are taken; bad listing parameters are 400 saying what to give', async () => {
    await starting;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await call('POST', '/v1/certs', { names: ['after.start.test'] })).status, 200);
    for (const [query, message] of [
      ['limit=0', /limit must be a whole number from 1 to 5000/],
      ['limit=5001', /limit must be/],
      ['after=bm9wZQ', /after is not a cursor this daemon gave/],
      ['origin=mail', /origin "mail" is not one of/],
      ['expiresBefore=soon', /expiresBefore "soon" is not a time/],
      ['page=2', /unknown query parameter\(s\) page/],
    ] as const) {
      const res = await call('GET', `/v1/certs?${query}`);
      assert.equal(res.status, 400, query);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'CERTD_E_USAGE');
      assert.match(body.error.message, message);
    }
  });

  test('paging over the API with certificates added between pages: each one that stayed is listed once, in order', async () => {
    const seen: string[] = [];
    let after: string | undefined;
    let added = 0;
    do {
      const res = await call('GET', `/v1/certs?limit=7${after ? `&after=${after}` : ''}`);
      const page = (await res.json()) as { certs: { id: string }[]; next?: string };
      seen.push(...page.certs.map((c) => c.id));
      after = page.next;
      // One before every cursor ("a…" sorts first) and one after it ("z…").
      assert.equal((await call('POST', '/v1/certs', { names: [`a${added}.between.test`] })).status, 200);
      assert.equal((await call('POST', '/v1/certs', { names: [`z${added++}.between.test`] })).status, 200);
    } while (after !== undefined);
    assert.equal(new Set(seen).size, seen.length, 'no certificate twice');
    assert.deepEqual(seen, [...seen].sort(), 'in id order');
    for (let i = 0; i < SEEDED; i++) assert.ok(seen.includes(seededName(i)), `${seededName(i)} listed`);
    const filtered = (await (await call('GET', `/v1/certs?name=${encodeURIComponent('z*.between.test')}&limit=5000`)).json()) as { certs: { id: string }[] };
    assert.equal(filtered.certs.length, added, 'the glob finds every z… one');
  });

  test('stream=array: every match in one JSON array, laid out as list --json prints it; bad combinations are 400', async () => {
    const paged = (await (await call('GET', '/v1/certs?limit=5000')).json()) as { certs: unknown[]; next?: string };
    assert.equal(paged.next, undefined, 'one page holds them all');
    const res = await call('GET', '/v1/certs?stream=array');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(await res.text(), `${JSON.stringify(paged.certs, null, 2)}\n`, 'the same certificates, the same text as JSON.stringify(array, null, 2)');
    const imports = (await (await call('GET', '/v1/certs?stream=array&origin=import')).json()) as { origin: string }[];
    assert.ok(imports.length > 0 && imports.every((c) => c.origin === 'import'), 'filters apply');
    assert.equal(await (await call('GET', '/v1/certs?stream=array&name=nothing.matches.this')).text(), '[]\n');
    for (const [query, message] of [
      ['stream=array&limit=10', /leave out limit and after/],
      ['stream=ndjson', /stream "ndjson" is not known/],
    ] as const) {
      const bad = await call('GET', `/v1/certs?${query}`);
      assert.equal(bad.status, 400, query);
      assert.match(((await bad.json()) as { error: { message: string } }).error.message, message);
    }
  });
});
