import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { certFacts } from '../src/core/bundle.js';
import { errorCode } from '../src/core/errors.js';
import { createRoot, LocalCa } from '../src/issuers/local-ca/index.js';
import { HttpSource, type HttpSourceOptions } from '../src/sources/http.js';
import type { SourceSink } from '../src/sources/source.js';
import { selfSigned } from './helpers/certs.js';

const TOKEN = 'Bearer s3cret-token-value';

type Event = { op: 'put'; key: string; fingerprint: string } | { op: 'drop'; key: string } | { op: 'reject'; key: string; code?: string; message: string };

class Recorder implements SourceSink {
  readonly events: Event[] = [];
  async put(key: string, certPem: string): Promise<void> {
    this.events.push({ op: 'put', key, fingerprint: certFacts(certPem).fingerprint });
  }
  async drop(key: string): Promise<void> {
    this.events.push({ op: 'drop', key });
  }
  reject(key: string, error: Error): void {
    this.events.push({ op: 'reject', key, code: errorCode(error), message: error.message });
  }
  since(mark: number): Event[] {
    return this.events.slice(mark);
  }
}

/**
 * A PEM server on loopback: bodies by path, a bearer token check, ETag / Last-Modified with
 * conditional replies, and switches for failures. Records every request's method, path and
 * conditional headers.
 */
class PemServer {
  readonly bodies = new Map<string, string>();
  readonly requests: { path: string; ifNoneMatch?: string; ifModifiedSince?: string; status: number }[] = [];
  failWith?: number;
  delayMs = 0;
  lastModified = new Date(Date.now() - 60_000).toUTCString();
  server!: Server;
  base = '';

  handle = (req: IncomingMessage, res: ServerResponse) => {
    const reply = (status: number, body = '', headers: Record<string, string> = {}) => {
      this.requests.push({ path: req.url!, ifNoneMatch: req.headers['if-none-match'], ifModifiedSince: req.headers['if-modified-since'], status });
      setTimeout(() => res.writeHead(status, headers).end(body), this.delayMs);
    };
    if (req.headers.authorization === undefined) return reply(401, 'token required');
    if (req.headers.authorization !== TOKEN) return reply(403, 'bad token');
    if (this.failWith) return reply(this.failWith, 'broken');
    const body = this.bodies.get(req.url!);
    if (body === undefined) return reply(404, 'no such bundle');
    const etag = `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;
    if (req.headers['if-none-match'] === etag) return reply(304);
    reply(200, body, { etag, 'last-modified': this.lastModified, 'content-type': 'application/x-pem-file' });
  };

  async listen(server: Server, scheme: 'http' | 'https'): Promise<void> {
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.base = `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  count(path: string, status?: number): number {
    return this.requests.filter((r) => r.path === path && (status === undefined || r.status === status)).length;
  }
}

describe('HttpSource', () => {
  const srv = new PemServer();
  const sources: HttpSource[] = [];
  const open = async (o: Partial<HttpSourceOptions> & { url: string }) => {
    const rec = new Recorder();
    const source = new HttpSource({ everyMs: 60_000, timeoutMs: 2_000, headers: { Authorization: TOKEN }, ...o });
    sources.push(source);
    await source.start(rec);
    return { rec, source };
  };

  before(() => srv.listen(createHttpServer(srv.handle), 'http'));
  afterEach(async () => {
    await Promise.all(sources.splice(0).map((s) => s.stop()));
    srv.failWith = undefined;
    srv.delayMs = 0;
  });
  after(() => srv.close());

  test('401 without a token, 403 with a wrong one: rejected with the status, never the token', async () => {
    const v1 = await selfSigned('auth.test');
    srv.bodies.set('/auth.pem', v1.pem);
    const none = await open({ url: `${srv.base}/auth.pem`, headers: {} });
    assert.equal(none.rec.events.length, 1);
    const e401 = none.rec.events[0]!;
    assert.equal(e401.op === 'reject' && e401.code, 'CERTD_E_SOURCE_AUTH');
    assert.match(e401.op === 'reject' ? e401.message : '', /401 Unauthorized: check the token/);

    const wrong = await open({ url: `${srv.base}/auth.pem`, headers: { Authorization: 'Bearer wrong-secret' } });
    const e403 = wrong.rec.events[0]!;
    assert.equal(e403.op === 'reject' && e403.code, 'CERTD_E_SOURCE_AUTH');
    assert.match(e403.op === 'reject' ? e403.message : '', /403 Forbidden: check the token \(the credentials sent in Authorization\)/);
    assert.doesNotMatch(JSON.stringify(wrong.rec.events), /wrong-secret/);

    // A persisting failure is reported once, not at every pass.
    await wrong.source.rescan();
    assert.equal(wrong.rec.events.length, 1);

    // Credentials in the URL are sent (basic auth) but never shown: not in keys, names or messages.
    const inUrl = await open({ url: `${srv.base.replace('//', '//user:hunter2@')}/auth.pem`, headers: {} });
    assert.equal(inUrl.rec.events[0]?.key, `${srv.base}/auth.pem`);
    assert.doesNotMatch(`${inUrl.source.name} ${JSON.stringify(inUrl.rec.events)}`, /hunter2/);
  });

  test('valid → put; unchanged → 304, no put; changed → put; garbage → rejected, the old one stays', async () => {
    const v1 = await selfSigned('www.test');
    srv.bodies.set('/www.pem', v1.pem);
    const { rec, source } = await open({ url: `${srv.base}/www.pem` });
    assert.deepEqual(rec.events, [{ op: 'put', key: `${srv.base}/www.pem`, fingerprint: v1.fingerprint }]);

    await source.rescan();
    await source.rescan();
    assert.equal(rec.events.length, 1, 'no put for an unchanged bundle');
    const conditional = srv.requests.filter((r) => r.path === '/www.pem').slice(-2);
    assert.ok(conditional.every((r) => r.status === 304 && r.ifNoneMatch && r.ifModifiedSince === srv.lastModified), JSON.stringify(conditional));

    const v2 = await selfSigned('www.test');
    srv.bodies.set('/www.pem', v2.pem);
    let mark = rec.events.length;
    await source.rescan();
    assert.deepEqual(rec.since(mark), [{ op: 'put', key: `${srv.base}/www.pem`, fingerprint: v2.fingerprint }]);

    mark = rec.events.length;
    srv.bodies.set('/www.pem', '<html>maintenance</html>');
    await source.rescan();
    await source.rescan();
    assert.deepEqual(rec.since(mark).map((e) => [e.op, e.op === 'reject' && e.code]), [['reject', 'CERTD_E_BAD_PEM']]);

    // Back to the bundle already served: nothing to do.
    srv.bodies.set('/www.pem', v2.pem);
    await source.rescan();
    assert.equal(rec.since(mark).length, 1);
  });

  test('5xx: rejected and retried with backoff on its own; recovery with the same bundle calls nothing', async () => {
    const v1 = await selfSigned('flaky.test');
    srv.bodies.set('/flaky.pem', v1.pem);
    const { rec, source } = await open({ url: `${srv.base}/flaky.pem`, retryMinMs: 100 });
    srv.failWith = 503;
    await source.rescan();
    const failure = rec.events[1]!;
    assert.equal(failure.op === 'reject' && failure.code, 'CERTD_E_SOURCE_UNAVAILABLE');
    assert.match(failure.op === 'reject' ? failure.message : '', /503 Service Unavailable; retried with backoff/);
    const failed = srv.count('/flaky.pem', 503);
    await sleep(450); // retries at +100 ms, +200 ms (everyMs is a minute)
    assert.ok(srv.count('/flaky.pem', 503) >= failed + 2, `retried: ${srv.count('/flaky.pem', 503) - failed}`);
    assert.equal(rec.events.length, 2, 'reported once');
    srv.failWith = undefined;
    await sleep(500);
    assert.ok(srv.count('/flaky.pem', 304) >= 1, 'recovered with a conditional request');
    assert.equal(rec.events.length, 2);
  });

  test('a slow server hits the timeout: rejected, nothing changes', async () => {
    const v1 = await selfSigned('slow.test');
    srv.bodies.set('/slow.pem', v1.pem);
    srv.delayMs = 1_000;
    const started = Date.now();
    const { rec } = await open({ url: `${srv.base}/slow.pem`, timeoutMs: 200 });
    assert.ok(Date.now() - started < 900);
    assert.equal(rec.events.length, 1);
    const e = rec.events[0]!;
    assert.equal(e.op === 'reject' && e.code, 'CERTD_E_SOURCE_UNAVAILABLE');
    assert.match(e.op === 'reject' ? e.message : '', /no complete reply within 200 ms/);
  });

  test('a {name} template fetches each name; 404 is rejected', async () => {
    const a = await selfSigned('a.tpl.test');
    const wild = await selfSigned('*.tpl.test');
    srv.bodies.set('/certs/a.tpl.test.pem', a.pem);
    srv.bodies.set('/certs/*.tpl.test.pem', wild.pem);
    const { rec } = await open({ url: `${srv.base}/certs/{name}.pem`, names: ['a.tpl.test', '*.tpl.test', 'missing.tpl.test'] });
    const byKey = new Map(rec.events.map((e) => [e.key, e]));
    assert.equal(rec.events.length, 3);
    assert.deepEqual(byKey.get(`${srv.base}/certs/a.tpl.test.pem`), { op: 'put', key: `${srv.base}/certs/a.tpl.test.pem`, fingerprint: a.fingerprint });
    assert.equal(byKey.get(`${srv.base}/certs/*.tpl.test.pem`)?.op, 'put');
    const missing = byKey.get(`${srv.base}/certs/missing.tpl.test.pem`)!;
    assert.equal(missing.op === 'reject' && missing.code, 'CERTD_E_SOURCE_NOT_FOUND');
  });

  test('options are checked when the source is built', () => {
    const base = { everyMs: 1000, timeoutMs: 1000 };
    assert.throws(() => new HttpSource({ ...base, url: 'https://x.test/{name}.pem' }), /give the names/);
    assert.throws(() => new HttpSource({ ...base, url: 'https://x.test/a.pem', names: ['a.test'] }), /no \{name\}/);
    assert.throws(() => new HttpSource({ ...base, url: 'ftp://x.test/a.pem' }), /http: or https:/);
    assert.throws(() => new HttpSource({ ...base, url: 'https://x.test/{name}.pem', names: ['../etc'] }), /invalid label|CERTD_E_INVALID_NAME|name/);
  });
});

describe('HttpSource over https with a private CA', () => {
  const srv = new PemServer();
  let caPem = '';
  const sources: HttpSource[] = [];

  before(async () => {
    const ca = LocalCa.fromRoot(await createRoot());
    caPem = ca.rootPem;
    const tls = await ca.issueLeaf({ names: ['127.0.0.1'], validityMs: 86_400_000 });
    await srv.listen(createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, srv.handle), 'https');
    srv.bodies.set('/tls.pem', (await selfSigned('tls.test')).pem);
  });
  after(async () => {
    await Promise.all(sources.map((s) => s.stop()));
    await srv.close();
  });

  test('trusted through caBundle: put', async () => {
    const rec = new Recorder();
    const source = new HttpSource({ url: `${srv.base}/tls.pem`, everyMs: 60_000, timeoutMs: 2_000, headers: { Authorization: TOKEN }, caBundle: caPem });
    sources.push(source);
    await source.start(rec);
    assert.deepEqual(rec.events.map((e) => e.op), ['put']);
  });

  test('without caBundle: rejected, saying to set caBundle', async () => {
    const rec = new Recorder();
    const source = new HttpSource({ url: `${srv.base}/tls.pem`, everyMs: 60_000, timeoutMs: 2_000, headers: { Authorization: TOKEN } });
    sources.push(source);
    await source.start(rec);
    const e = rec.events[0]!;
    assert.equal(e.op === 'reject' && e.code, 'CERTD_E_SOURCE_UNAVAILABLE');
    assert.match(e.op === 'reject' ? e.message : '', /not trusted: set caBundle/);
  });
});
