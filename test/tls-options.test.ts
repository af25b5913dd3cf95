import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { promisify } from 'node:util';
import { eventually, handshake, startStack, type Stack } from './helpers/stack.js';
import { tempDir } from './helpers/temp-dir.js';

const run = promisify(execFile);

/** A client CA and one client certificate it signed, made with the openssl CLI. */
async function clientPki(dir: string) {
  const f = (n: string) => join(dir, n);
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('client-ca.key'), '-out', f('clients.pem'), '-days', '2', '-subj', '/CN=test client CA']);
  await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('client.key'), '-out', f('client.csr'), '-subj', '/CN=alice']);
  await run('openssl', ['x509', '-req', '-in', f('client.csr'), '-CA', f('clients.pem'), '-CAkey', f('client-ca.key'), '-CAcreateserial', '-out', f('client.pem'), '-days', '2']);
  return { cert: await readFile(f('client.pem'), 'utf8'), key: await readFile(f('client.key'), 'utf8') };
}

/** A TLS connection that sends one HTTP request; resolves with the status line or rejects. */
function get(port: number, servername: string, opts: { ca: string; cert?: string; key?: string; alpn?: string[] }) {
  return new Promise<{ status: string; alpn: string | false }>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername, ca: opts.ca, cert: opts.cert, key: opts.key, ALPNProtocols: opts.alpn ?? ['http/1.1'] });
    let data = '';
    socket.setTimeout(5_000, () => socket.destroy(new Error('timeout')));
    socket.once('secureConnect', () => socket.write(`GET / HTTP/1.1\r\nhost: ${servername}\r\nconnection: close\r\n\r\n`));
    socket.on('data', (d) => (data += d));
    socket.once('end', () => (data ? resolve({ status: data.split('\r\n')[0]!, alpn: socket.alpnProtocol ?? false }) : reject(new Error('closed without a response'))));
    socket.once('error', reject);
  });
}

describe('per-certificate TLS options from config, at runtime (crt-list line options)', () => {
  let stack: Stack;
  let ca: string;
  let client: { cert: string; key: string };
  let pki: string;

  before(async () => {
    pki = tempDir('certd-pki-');
    client = await clientPki(pki);
    stack = await startStack({
      certificates: [
        { names: ['mtls.test'], issuer: 'internal', tls: { clientAuth: 'required', clientCa: join(pki, 'clients.pem'), alpn: ['http/1.1'] } },
        { names: ['modern.test'], issuer: 'internal', tls: { minVersion: 'TLSv1.3', alpn: ['h2', 'http/1.1'] } },
      ],
      issuers: { internal: { type: 'local-ca' } },
    });
    ca = await stack.rootPem();
    for (const name of ['mtls.test', 'modern.test']) {
      await eventually(async () => stack.daemon.deployer.deployedOn(name).length === 1, 10_000, `${name} deployed from config`);
    }
  });
  after(async () => {
    await stack?.stop();
  });

  test('mTLS: verify required with an in-memory ca-file; a client certificate from that CA is accepted', async () => {
    const ok = await get(stack.tlsPort, 'mtls.test', { ca, ...client });
    assert.match(ok.status, /^HTTP\/1\.1 200/);
    await assert.rejects(get(stack.tlsPort, 'mtls.test', { ca }), 'no client certificate must be refused');
    await stack.daemon.deployer.drain(); // the crt-list is rewritten behind the push
    const list = await readFile(stack.config.haproxy.crtList, 'utf8');
    assert.match(list, /mtls\.test\.pem \[alpn http\/1\.1 verify required ca-file \S+\/ca\/mtls\.test\.pem\] mtls\.test/);
  });

  test('other names are unaffected by one name’s client-auth', async () => {
    const res = await get(stack.tlsPort, 'modern.test', { ca });
    assert.match(res.status, /^HTTP\/1\.1 200/);
  });

  test('ALPN per name: the line’s list overrides the bind line', async () => {
    assert.equal((await handshake(stack.tlsPort, 'mtls.test', { alpn: ['h2', 'http/1.1'] })).alpn, 'http/1.1');
    assert.equal((await handshake(stack.tlsPort, 'modern.test', { alpn: ['h2', 'http/1.1'] })).alpn, 'h2');
  });

  test('ssl-min-ver per name: TLS 1.2 is refused for modern.test only', async () => {
    const tls12 = (servername: string) =>
      new Promise<string>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port: stack.tlsPort, servername, rejectUnauthorized: false, maxVersion: 'TLSv1.2' });
        s.once('secureConnect', () => {
          resolve(String(s.getProtocol()));
          s.end();
        });
        s.once('error', reject);
      });
    await assert.rejects(tls12('modern.test'));
    assert.equal(await tls12('mtls-free.test').catch(() => 'refused'), 'TLSv1.2', 'the default certificate still speaks TLS 1.2');
  });

  test('after an HAProxy restart the same options apply (ca-file loaded from disk)', async () => {
    await stack.haproxy.restart();
    const ok = await get(stack.tlsPort, 'mtls.test', { ca, ...client });
    assert.match(ok.status, /^HTTP\/1\.1 200/);
    await assert.rejects(get(stack.tlsPort, 'mtls.test', { ca }));
  });
});
