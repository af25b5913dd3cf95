import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, verify, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import { errorCode } from '../src/core/errors.js';
import {
  AcmeClient,
  AcmeIssuer,
  ariCertId,
  type AcmeError,
  type AcmeStorage,
} from '../src/issuers/acme/index.js';
import type { Lock } from '../src/store/store.js';
import { makeCert } from './helpers/tls.js';

/*
 * The client against a small node:http ACME server we control: what Pebble 2.4 cannot show
 * (profiles, ARI, Retry-After, rate limits) and exact protocol details (nonce reuse, payloads).
 * Every JWS is checked here too: ES256 over protected.payload with the registered key.
 */

interface Seen {
  /** 1 for the first request on its connection, 2 for the next kept-alive one… */
  onConnection: number;
  method: string;
  path: string;
  header: { nonce?: string; kid?: string; url?: string; jwk?: unknown; alg?: string };
  payload: Record<string, unknown> | undefined;
}

type Route = (seen: Seen, res: ServerResponse) => void;

class FakeAcme {
  readonly seen: Seen[] = [];
  routes = new Map<string, Route>();
  meta: Record<string, unknown> = {};
  renewalInfo = false;
  private nonce = 0;
  private server!: Server;
  base = '';
  accountKey: KeyObject | undefined;
  private readonly perConnection = new WeakMap<object, number>();

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  reset(): void {
    this.seen.length = 0;
    this.routes.clear();
    this.meta = {};
    this.renewalInfo = false;
  }

  nextNonce(): string {
    return `nonce-${++this.nonce}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const path = req.url ?? '/';
    const onConnection = (this.perConnection.get(req.socket) ?? 0) + 1;
    this.perConnection.set(req.socket, onConnection);
    res.setHeader('replay-nonce', this.nextNonce());
    if (req.method === 'GET' && path === '/dir') {
      json(res, 200, {
        newNonce: `${this.base}/nonce`,
        newAccount: `${this.base}/new-account`,
        newOrder: `${this.base}/new-order`,
        revokeCert: `${this.base}/revoke`,
        ...(this.renewalInfo ? { renewalInfo: `${this.base}/renewal-info/` } : {}),
        meta: this.meta,
      });
      return;
    }
    if (req.method === 'HEAD' && path === '/nonce') {
      res.writeHead(200).end();
      return;
    }
    let seen: Seen = { onConnection, method: req.method!, path, header: {}, payload: undefined };
    if (req.method === 'POST') {
      const jws = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { protected: string; payload: string; signature: string };
      const header = JSON.parse(Buffer.from(jws.protected, 'base64url').toString('utf8')) as Seen['header'];
      const payload = jws.payload ? (JSON.parse(Buffer.from(jws.payload, 'base64url').toString('utf8')) as Record<string, unknown>) : undefined;
      seen = { onConnection, method: 'POST', path, header, payload };
      const key = this.accountKey!;
      const ok = verify('sha256', Buffer.from(`${jws.protected}.${jws.payload}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(jws.signature, 'base64url'));
      assert.ok(ok, `ES256 signature of ${path} verifies`);
      assert.equal(header.alg, 'ES256');
      assert.equal(header.url, `${this.base}${path}`, 'the protected url is the request URL');
    }
    this.seen.push(seen);
    const route = this.routes.get(`${req.method} ${path.replace(/\/renewal-info\/.*/, '/renewal-info/*')}`);
    if (route) route(seen, res);
    else problem(res, 404, 'malformed', `no route for ${req.method} ${path}`);
  }
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

function problem(res: ServerResponse, status: number, type: string, detail: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): void {
  res
    .writeHead(status, { 'content-type': 'application/problem+json', ...headers })
    .end(JSON.stringify({ type: `urn:ietf:params:acme:error:${type}`, detail, status, ...extra }));
}

const fake = new FakeAcme();
let accountKey: KeyObject;

function client(over: Partial<ConstructorParameters<typeof AcmeClient>[0]> = {}): AcmeClient {
  return new AcmeClient({ directoryUrl: `${fake.base}/dir`, accountKey, accountUrl: `${fake.base}/acct/1`, ...over });
}

const orderBody = (status: string) => ({
  status,
  identifiers: [{ type: 'dns', value: 'a.example.com' }],
  authorizations: [],
  finalize: `${fake.base}/finalize/1`,
});

function orderRoute(): Route {
  return (_seen, res) => json(res, 201, orderBody('pending'), { location: `${fake.base}/order/1` });
}

before(async () => {
  accountKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  fake.accountKey = accountKey;
  await fake.start();
});
after(() => fake.stop());
beforeEach(() => fake.reset());

describe('AcmeClient: newOrder', () => {
  it('sends dns and ip identifiers, signed with kid', async () => {
    fake.routes.set('POST /new-order', orderRoute());
    const order = await client().newOrder({ names: ['a.example.com', '192.0.2.1'] });
    assert.equal(order.url, `${fake.base}/order/1`);
    assert.equal(order.status, 'pending');
    const sent = fake.seen.find((s) => s.path === '/new-order')!;
    assert.equal(sent.header.kid, `${fake.base}/acct/1`);
    assert.equal(sent.header.jwk, undefined);
    assert.deepEqual(sent.payload, {
      identifiers: [{ type: 'dns', value: 'a.example.com' }, { type: 'ip', value: '192.0.2.1' }],
    });
  });

  it('sends the profile when the directory offers it, refuses one it does not offer, omits it without profiles', async () => {
    fake.routes.set('POST /new-order', orderRoute());
    fake.meta = { profiles: { classic: 'the usual', shortlived: '6 days' } };
    await client().newOrder({ names: ['a.example.com'], profile: 'shortlived' });
    assert.equal(fake.seen.at(-1)!.payload!.profile, 'shortlived');

    const orders = () => fake.seen.filter((s) => s.path === '/new-order').length;
    const sent = orders();
    await assert.rejects(client().newOrder({ names: ['a.example.com'], profile: 'tlsserver' }), (err: Error) => {
      assert.equal(errorCode(err), 'CERTD_E_CONFIG');
      assert.match(err.message, /offers: classic, shortlived/);
      return true;
    });
    assert.equal(orders(), sent, 'refused before sending');

    fake.meta = {};
    await client().newOrder({ names: ['a.example.com'], profile: 'shortlived' });
    assert.equal(fake.seen.at(-1)!.payload!.profile, undefined);
  });

  it('sends replaces only when the CA offers ARI', async () => {
    fake.routes.set('POST /new-order', orderRoute());
    await client().newOrder({ names: ['a.example.com'], replaces: 'abc.def' });
    assert.equal(fake.seen.at(-1)!.payload!.replaces, undefined);
    fake.renewalInfo = true;
    await client().newOrder({ names: ['a.example.com'], replaces: 'abc.def' });
    assert.equal(fake.seen.at(-1)!.payload!.replaces, 'abc.def');
  });
});

describe('AcmeClient: nonces and problems', () => {
  it('retries badNonce with the nonce from the error reply', async () => {
    let calls = 0;
    let fresh = '';
    fake.routes.set('POST /new-order', (seen, res) => {
      if (calls++ === 0) {
        fresh = fake.nextNonce();
        problem(res, 400, 'badNonce', 'stale nonce', {}, { 'replay-nonce': fresh });
        return;
      }
      assert.equal(seen.header.nonce, fresh, 'the retry uses the nonce the error carried');
      orderRoute()(seen, res);
    });
    const order = await client().newOrder({ names: ['a.example.com'] });
    assert.equal(order.status, 'pending');
    assert.equal(calls, 2);
  });

  it('gives up on badNonce after three retries with CERTD_E_ACME_BAD_NONCE', async () => {
    let calls = 0;
    fake.routes.set('POST /new-order', (_seen, res) => {
      calls++;
      problem(res, 400, 'badNonce', 'stale nonce');
    });
    await assert.rejects(client().newOrder({ names: ['a.example.com'] }), (err: Error) => errorCode(err) === 'CERTD_E_ACME_BAD_NONCE');
    assert.equal(calls, 4);
  });

  it('uses each nonce once, pooling the ones replies carry', async () => {
    fake.routes.set('POST /new-order', orderRoute());
    const c = client();
    await Promise.all(Array.from({ length: 8 }, () => c.newOrder({ names: ['a.example.com'] })));
    await c.newOrder({ names: ['a.example.com'] });
    const nonces = fake.seen.filter((s) => s.method === 'POST').map((s) => s.header.nonce);
    assert.equal(new Set(nonces).size, nonces.length);
    const heads = fake.seen.filter((s) => s.method === 'HEAD').length;
    assert.ok(heads <= 8, `the ninth order reused a pooled nonce (${heads} HEAD newNonce)`);
  });

  it('rateLimited is CERTD_E_ACME_RATE_LIMITED with Retry-After, detail and subproblems', async () => {
    fake.routes.set('POST /new-order', (_seen, res) =>
      problem(
        res,
        429,
        'rateLimited',
        'too many certificates for this domain',
        { subproblems: [{ type: 'urn:ietf:params:acme:error:rateLimited', detail: 'exact set', identifier: { type: 'dns', value: 'a.example.com' } }] },
        { 'retry-after': '120' },
      ),
    );
    await assert.rejects(client().newOrder({ names: ['a.example.com'] }), (err: AcmeError) => {
      assert.equal(err.code, 'CERTD_E_ACME_RATE_LIMITED');
      assert.equal(err.retryAfterMs, 120_000);
      assert.equal(err.detail, 'too many certificates for this domain');
      assert.equal(err.subproblems[0]!.identifier!.value, 'a.example.com');
      assert.match(err.message, /a\.example\.com: exact set/);
      assert.match(err.message, /retry after 120 s/);
      return true;
    });
  });

  it('a reply that is not a problem document still becomes a typed error with the HTTP status', async () => {
    fake.routes.set('POST /new-order', (_seen, res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>Bad Gateway</h1>'));
    await assert.rejects(client().newOrder({ names: ['a.example.com'] }), (err: Error) => {
      assert.equal(errorCode(err), 'CERTD_E_ACME');
      assert.match(err.message, /HTTP 502/);
      return true;
    });
  });

  it('sends again on a new connection when a kept-alive one was dropped by the server', async () => {
    let dropped = 0;
    fake.routes.set('POST /new-order', (seen, res) => {
      if (seen.onConnection > 1 && dropped === 0) {
        dropped++;
        res.socket!.destroy();
        return;
      }
      orderRoute()(seen, res);
    });
    const c = client();
    await c.newOrder({ names: ['a.example.com'] });
    const order = await c.newOrder({ names: ['a.example.com'] });
    assert.equal(order.status, 'pending');
    assert.equal(dropped, 1);
    const sent = fake.seen.filter((s) => s.path === '/new-order');
    assert.equal(sent.length, 3);
    assert.equal(sent[2]!.onConnection, 1, 'the resend used a new connection');
  });

  it('a CA that never answers is CERTD_E_ACME_UNREACHABLE after the request timeout (sent twice)', async () => {
    fake.routes.set('POST /new-order', () => {});
    const started = Date.now();
    await assert.rejects(client({ requestTimeoutMs: 300 }).newOrder({ names: ['a.example.com'] }), (err: Error) => {
      assert.equal(errorCode(err), 'CERTD_E_ACME_UNREACHABLE');
      assert.match(err.message, /300 ms/);
      return true;
    });
    assert.equal(fake.seen.filter((s) => s.path === '/new-order').length, 2);
    assert.ok(Date.now() - started < 2_000);
  });

  it('one hung request is sent again and the order goes on; finalize is never sent twice', async () => {
    let calls = 0;
    fake.routes.set('POST /new-order', (seen, res) => {
      if (++calls === 2) return; // the second order gets no reply at all
      orderRoute()(seen, res);
    });
    const c = client({ requestTimeoutMs: 300 });
    await c.newOrder({ names: ['a.example.com'] });
    const order = await c.newOrder({ names: ['a.example.com'] });
    assert.equal(order.status, 'pending');
    const sent = fake.seen.filter((s) => s.path === '/new-order');
    assert.equal(sent.length, 3);
    assert.ok(sent[1]!.onConnection > 1, 'the hung request went out on a kept-alive connection');
    assert.equal(sent[2]!.onConnection, 1, 'the resend used a new connection of its own');
    fake.routes.set('POST /finalize/1', () => {});
    await assert.rejects(client({ requestTimeoutMs: 300 }).finalize(order, new Uint8Array([0x30, 0])), /no complete reply/);
    assert.equal(fake.seen.filter((s) => s.path === '/finalize/1').length, 1);
  });
});

describe('AcmeClient: polling', () => {
  it('waits the Retry-After the CA asks for, bounded by timeoutMs (CERTD_E_ACME_TIMEOUT)', async () => {
    fake.routes.set('POST /order/1', (_seen, res) => json(res, 200, orderBody('processing'), { 'retry-after': '1' }));
    const started = Date.now();
    await assert.rejects(client().waitForOrder(`${fake.base}/order/1`, { timeoutMs: 1_500 }), (err: Error) => {
      assert.equal(errorCode(err), 'CERTD_E_ACME_TIMEOUT');
      return true;
    });
    const polls = fake.seen.filter((s) => s.path === '/order/1').length;
    assert.ok(polls >= 2 && polls <= 3, `Retry-After: 1 spaced the polls (${polls} in 1.5 s)`);
    assert.ok(Date.now() - started < 2_500);
  });

  it('stops at once when the signal aborts', async () => {
    fake.routes.set('POST /order/1', (_seen, res) => json(res, 200, orderBody('processing'), { 'retry-after': '30' }));
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('shutting down')), 100);
    const started = Date.now();
    await assert.rejects(client().waitForOrder(`${fake.base}/order/1`, { signal: controller.signal }), /shutting down/);
    assert.ok(Date.now() - started < 1_000);
  });

  it('returns the order once it leaves processing', async () => {
    let n = 0;
    fake.routes.set('POST /order/1', (_seen, res) => json(res, 200, { ...orderBody(n++ < 2 ? 'processing' : 'valid'), certificate: `${fake.base}/cert/1` }));
    const order = await client().waitForOrder(`${fake.base}/order/1`);
    assert.equal(order.status, 'valid');
    assert.equal(order.certificate, `${fake.base}/cert/1`);
    assert.equal(n, 3);
  });
});

describe('AcmeClient: renewalInfo (RFC 9773)', () => {
  it('GETs <renewalInfo>/<certID> and returns the window, explanation and Retry-After', async () => {
    const cert = await makeCert('ari.example.com');
    // makeCert's self-signed certificates carry an AKI (openssl adds keyid:always for -x509).
    const certId = ariCertId(cert.certPem);
    fake.renewalInfo = true;
    fake.routes.set('GET /renewal-info/*', (seen, res) => {
      assert.equal(seen.path, `/renewal-info/${certId}`);
      json(
        res,
        200,
        {
          suggestedWindow: { start: '2030-01-02T00:00:00Z', end: '2030-01-03T00:00:00Z' },
          explanationURL: 'https://ca.example/why',
        },
        { 'retry-after': '3600' },
      );
    });
    const info = await client().renewalInfo(cert.certPem);
    assert.deepEqual(info, {
      suggestedWindow: { start: new Date('2030-01-02T00:00:00Z'), end: new Date('2030-01-03T00:00:00Z') },
      explanationUrl: 'https://ca.example/why',
      retryAfterMs: 3_600_000,
    });

    fake.routes.set('GET /renewal-info/*', (_seen, res) => json(res, 200, { suggestedWindow: { start: '2030-01-03T00:00:00Z', end: '2030-01-02T00:00:00Z' } }));
    await assert.rejects(client().renewalInfo(cert.certPem), (err: Error) => errorCode(err) === 'CERTD_E_ACME');
  });

  it('is undefined when the directory has no renewalInfo', async () => {
    const cert = await makeCert('ari.example.com');
    assert.equal(await client().renewalInfo(cert.certPem), undefined);
  });
});

describe('AcmeClient: newAccount', () => {
  it('looks the key up first (onlyReturnExisting, jwk), then creates with contact and terms', async () => {
    fake.routes.set('POST /new-account', (seen, res) => {
      if (seen.payload!.onlyReturnExisting) problem(res, 400, 'accountDoesNotExist', 'no account for this key');
      else json(res, 201, { status: 'valid' }, { location: `${fake.base}/acct/7` });
    });
    const c = client({ accountUrl: undefined });
    const result = await c.newAccount({ emails: ['ops@example.com'] });
    assert.deepEqual(result, { url: `${fake.base}/acct/7`, account: { status: 'valid', contact: undefined }, created: true });
    assert.equal(c.accountUrl, `${fake.base}/acct/7`);
    const [lookup, create] = fake.seen.filter((s) => s.path === '/new-account');
    assert.deepEqual(lookup!.payload, { onlyReturnExisting: true });
    assert.ok(lookup!.header.jwk && !lookup!.header.kid);
    assert.deepEqual(create!.payload, { termsOfServiceAgreed: true, contact: ['mailto:ops@example.com'] });
  });

  it('sends an HS256 external account binding over the account JWK for the newAccount URL', async () => {
    fake.routes.set('POST /new-account', (seen, res) => {
      if (seen.payload!.onlyReturnExisting) problem(res, 400, 'accountDoesNotExist', 'no account');
      else json(res, 201, { status: 'valid' }, { location: `${fake.base}/acct/8` });
    });
    fake.meta = { externalAccountRequired: true };
    const hmacKey = Buffer.alloc(32, 9).toString('base64url');
    await client({ accountUrl: undefined }).newAccount({ eab: { kid: 'kid-x', hmacKey } });
    const binding = fake.seen.at(-1)!.payload!.externalAccountBinding as { protected: string; payload: string; signature: string };
    const header = JSON.parse(Buffer.from(binding.protected, 'base64url').toString('utf8')) as Record<string, string>;
    assert.deepEqual(header, { alg: 'HS256', kid: 'kid-x', url: `${fake.base}/new-account` });
    const jwk = JSON.parse(Buffer.from(binding.payload, 'base64url').toString('utf8')) as Record<string, string>;
    assert.deepEqual(Object.keys(jwk), ['crv', 'kty', 'x', 'y']);
    const mac = createHmac('sha256', Buffer.alloc(32, 9)).update(`${binding.protected}.${binding.payload}`).digest('base64url');
    assert.equal(binding.signature, mac);
  });
});

/** A Map with the store's lock, for the issuer's account. */
class MapStorage implements AcmeStorage {
  readonly blobs = new Map<string, Buffer>();
  async getBlob(key: string): Promise<Buffer | undefined> {
    return this.blobs.get(key);
  }
  async putBlob(key: string, data: Buffer | string): Promise<void> {
    this.blobs.set(key, Buffer.from(data));
  }
  async lock(key: string): Promise<Lock> {
    return { key, token: '1', held: true, release: async () => {} };
  }
}

describe('AcmeIssuer: an account the CA forgot', () => {
  it('registers the same key again once (accountDoesNotExist) and stores the new URL', async () => {
    const storage = new MapStorage();
    let accounts = 0;
    fake.routes.set('POST /new-account', (seen, res) => {
      // The first lookup finds nothing; after the "reset" the key is known again under a new URL.
      if (seen.payload!.onlyReturnExisting && accounts === 0) {
        problem(res, 400, 'accountDoesNotExist', 'no account');
        return;
      }
      const url = `${fake.base}/acct/${++accounts}`;
      json(res, seen.payload!.onlyReturnExisting ? 200 : 201, { status: 'valid' }, { location: url });
    });
    fake.routes.set('POST /new-order', (seen, res) => {
      if (seen.header.kid === `${fake.base}/acct/1`) {
        problem(res, 400, 'accountDoesNotExist', 'the CA was reset');
        return;
      }
      problem(res, 429, 'rateLimited', 'stop here');
    });
    const acme = new AcmeIssuer({
      id: 'forgot',
      directory: `${fake.base}/dir`,
      challenge: 'http-01',
      solvers: { 'http-01': { present: async () => {}, cleanup: async () => {} } },
      store: storage,
    });
    // The fake checks signatures with one key: give the issuer that key through a stored account.
    storage.blobs.set(
      'acme/forgot/account.json',
      Buffer.from(JSON.stringify({ version: 1, directory: `${fake.base}/dir`, url: `${fake.base}/acct/1`, key: accountKey.export({ format: 'jwk' }), createdAt: '' })),
    );
    accounts = 1;
    await assert.rejects(acme.issue({ names: ['a.example.com'] }), (err: Error) => errorCode(err) === 'CERTD_E_ACME_RATE_LIMITED');
    const kids = fake.seen.filter((s) => s.path === '/new-order').map((s) => s.header.kid);
    assert.deepEqual(kids, [`${fake.base}/acct/1`, `${fake.base}/acct/2`]);
    const stored = JSON.parse(storage.blobs.get('acme/forgot/account.json')!.toString('utf8')) as { url: string };
    assert.equal(stored.url, `${fake.base}/acct/2`);
    acme.close();
  });
});
