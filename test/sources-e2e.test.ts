import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import { dirname, join } from 'node:path';
import { selfSigned } from './helpers/certs.js';
import { freePort } from './helpers/ports.js';
import { eventually, handshake, startStack, type Stack } from './helpers/stack.js';

/** Writes archive/<name>/{fullchain,privkey}N.pem and points live/<name>/ at them, as certbot does. */
async function certbotWrite(le: string, name: string, n: number, bundle: { certPem: string; keyPem: string }, linkKey = true) {
  const archive = join(le, 'archive', name);
  const live = join(le, 'live', name);
  await mkdir(archive, { recursive: true });
  await mkdir(live, { recursive: true });
  await writeFile(join(archive, `fullchain${n}.pem`), bundle.certPem);
  await writeFile(join(archive, `privkey${n}.pem`), bundle.keyPem, { mode: 0o600 });
  const swap = async (file: string, link: string) => {
    const tmp = `${link}.tmp`;
    await symlink(join('..', '..', 'archive', name, file), tmp);
    await rename(tmp, link);
  };
  await swap(`fullchain${n}.pem`, join(live, 'fullchain.pem'));
  if (linkKey) await swap(`privkey${n}.pem`, join(live, 'privkey.pem'));
}

describe('sources feeding the daemon: certbot live/ and an HTTP endpoint, served by HAProxy without reloads', () => {
  let stack: Stack;
  let le: string;
  let http: Server;
  let httpBundle: string;
  let hits = 0;
  const TOKEN = 'source-token';

  before(async () => {
    le = join(await mkdtemp(join(tmpdir(), 'certd-le-')), 'letsencrypt');
    await certbotWrite(le, 'bot.test', 1, await selfSigned('bot.test'));
    const b = await selfSigned('fetched.test');
    httpBundle = b.certPem + b.keyPem;
    const port = await freePort();
    http = createServer((req, res) => {
      hits++;
      if (req.headers.authorization !== `Bearer ${TOKEN}`) return void res.writeHead(401).end('no');
      res.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(httpBundle);
    });
    await new Promise<void>((r) => http.listen(port, '127.0.0.1', r));
    stack = await startStack({
      sources: [
        { type: 'directory', path: join(le, 'live'), every: '1m' },
        { type: 'http', url: `http://127.0.0.1:${port}/bundle.pem`, headers: { Authorization: `Bearer ${TOKEN}` }, every: '500ms' },
        { type: 'http', url: `http://127.0.0.1:${port}/other.pem`, headers: { Authorization: 'Bearer wrong' }, every: '500ms' },
      ],
    });
  });
  after(async () => {
    await stack.stop();
    await new Promise((r) => http.close(r));
    await rm(dirname(le), { recursive: true, force: true });
  });

  test('certbot renewal (new archive files + symlink swap) is served within 2 s, with no reload', async () => {
    await eventually(async () => (await handshake(stack.tlsPort, 'bot.test')).san.includes('bot.test'), 5_000, 'first version served');
    const pid = await stack.haproxy.workerPid();
    const before = (await handshake(stack.tlsPort, 'bot.test')).serial;
    const t0 = Date.now();
    await certbotWrite(le, 'bot.test', 2, await selfSigned('bot.test'));
    const ms = await eventually(async () => (await handshake(stack.tlsPort, 'bot.test')).serial !== before, 2_000, 'renewal served');
    assert.ok(Date.now() - t0 < 2_000, `${ms} ms`);
    assert.equal(await stack.haproxy.workerPid(), pid);
  });

  test('a half-written renewal (new fullchain, old key) is rejected; the old certificate stays', async () => {
    const serving = (await handshake(stack.tlsPort, 'bot.test')).serial;
    await certbotWrite(le, 'bot.test', 3, await selfSigned('bot.test'), false);
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal((await handshake(stack.tlsPort, 'bot.test')).serial, serving);
  });

  test('HTTP source with a token: served; a 401 and a garbage body change nothing', async () => {
    await eventually(async () => (await handshake(stack.tlsPort, 'fetched.test')).san.includes('fetched.test'), 5_000, 'fetched served');
    const serving = (await handshake(stack.tlsPort, 'fetched.test')).serial;
    const good = httpBundle;
    httpBundle = 'this is not a PEM';
    const seen = hits;
    await eventually(async () => hits > seen + 2, 5_000, 'polled again');
    assert.equal((await handshake(stack.tlsPort, 'fetched.test')).serial, serving);
    httpBundle = good;
    const ids = (await stack.daemon.store.listCerts()).map((m) => `${m.id}:${m.origin}`).sort();
    assert.deepEqual(ids, ['bot.test:source', 'fetched.test:source']);
  });
});
