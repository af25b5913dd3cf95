/*
 * Pure parts of the runtime client: address parsing, argument allowlists, PEM sanitising, reply
 * classification (texts captured from HAProxy 2.6.12), framing against a fake CLI, the queue.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import {
  ConfigError,
  HaproxyCommandError,
  HaproxyExistsError,
  HaproxyInUseError,
  HaproxyLockedError,
  HaproxyNoTransactionError,
  HaproxyNotFoundError,
  HaproxyTimeoutError,
  HaproxyTxnMismatchError,
  HaproxyUnreachableError,
  InvalidNameError,
  InvalidPemError,
} from '../src/core/errors.js';
import { SerialQueue } from '../src/core/async.js';
import { formatRuntimeAddress, parseRuntimeAddress } from '../src/haproxy/runtime/address.js';
import { checkCrtListOption, checkMapWord, checkPath, checkSniFilter, sanitizePem } from '../src/haproxy/runtime/args.js';
import { RuntimeClient } from '../src/haproxy/runtime/client.js';
import {
  isLocked,
  OK,
  parseCaFileList,
  parseCrtList,
  parseInfo,
  parseMap,
  parseSslCertDetails,
  parseSslCertList,
  replyError,
  severalEntryLines,
  showError,
} from '../src/haproxy/runtime/reply.js';
import { replyBody, RuntimeSession } from '../src/haproxy/runtime/session.js';

describe('parseRuntimeAddress', () => {
  it('accepts our forms and HAProxy\'s', () => {
    assert.deepEqual(parseRuntimeAddress('unix:/run/haproxy/admin.sock'), { kind: 'unix', path: '/run/haproxy/admin.sock' });
    assert.deepEqual(parseRuntimeAddress('/run/admin.sock'), { kind: 'unix', path: '/run/admin.sock' });
    assert.deepEqual(parseRuntimeAddress('./admin.sock'), { kind: 'unix', path: './admin.sock' });
    assert.deepEqual(parseRuntimeAddress('unix@/run/admin.sock'), { kind: 'unix', path: '/run/admin.sock' });
    assert.deepEqual(parseRuntimeAddress('tcp:127.0.0.1:9999'), { kind: 'tcp', host: '127.0.0.1', port: 9999 });
    assert.deepEqual(parseRuntimeAddress('ipv4@127.0.0.1:9999'), { kind: 'tcp', host: '127.0.0.1', port: 9999 });
    assert.deepEqual(parseRuntimeAddress('tcp:[::1]:9999'), { kind: 'tcp', host: '::1', port: 9999 });
    assert.deepEqual(parseRuntimeAddress('ipv6@[::1]:9999'), { kind: 'tcp', host: '::1', port: 9999 });
    assert.deepEqual(parseRuntimeAddress('tcp:haproxy-1.internal:9999'), { kind: 'tcp', host: 'haproxy-1.internal', port: 9999 });
    assert.equal(formatRuntimeAddress(parseRuntimeAddress('ipv6@[::1]:1')), 'tcp:[::1]:1');
  });

  it('refuses anything else with a ConfigError naming the accepted forms', () => {
    for (const bad of ['', 'admin.sock', '127.0.0.1:9999', 'tcp:127.0.0.1', 'tcp:127.0.0.1:0', 'tcp:127.0.0.1:70000',
      'tcp:[127.0.0.1]:1', 'ipv4@::1:1', 'ipv4@[::1]:1', 'ipv6@127.0.0.1:1', 'tcp:bad host:1', 'unix:', 'abns@haproxy', 'http://x']) {
      assert.throws(() => parseRuntimeAddress(bad), ConfigError, bad);
    }
    assert.throws(() => parseRuntimeAddress('127.0.0.1:9999'), /tcp:127\.0\.0\.1:9999/);
  });
});

describe('argument allowlists (runtime-command injection)', () => {
  it('accepts ordinary paths, map words, options and SNI filters', () => {
    assert.equal(checkPath('/etc/haproxy/certd/_wildcard.example.com.pem'), '/etc/haproxy/certd/_wildcard.example.com.pem');
    assert.equal(checkPath('v/a+b=c,d~e.pem'), 'v/a+b=c,d~e.pem');
    assert.equal(checkMapWord('Xy_-9aB.tHuMb', 'value'), 'Xy_-9aB.tHuMb');
    assert.equal(checkCrtListOption('alpn h2,http/1.1'), 'alpn h2,http/1.1');
    assert.equal(checkCrtListOption('ciphers ECDHE+AESGCM:!aNULL:@SECLEVEL=2'), 'ciphers ECDHE+AESGCM:!aNULL:@SECLEVEL=2');
    assert.equal(checkCrtListOption('no-ca-names'), 'no-ca-names');
    assert.equal(checkSniFilter('*.Example.COM'), '*.example.com');
    assert.equal(checkSniFilter('!bad.example.com'), '!bad.example.com');
  });

  it('refuses whitespace, newlines, ; # \\ quotes, payload markers and leading specials', () => {
    for (const bad of ['/a b.pem', '/a\n.pem', '/a\r.pem', '/a\t.pem', '/a;show info', '/a#x', '/a\\b', '/a"b', "/a'b", '/a<<',
      '-n', '.hidden', '@1', '#1', '/a/../b', '', '/a:1', '/a[', '/a\0b', '/ä.pem', 'x'.repeat(1025)]) {
      assert.throws(() => checkPath(bad), InvalidNameError, JSON.stringify(bad));
    }
    assert.throws(() => checkPath(42 as unknown as string), InvalidNameError);
    for (const bad of ['a b', 'a;b', '#1', 'a\nb', '', 'a"', '@1']) assert.throws(() => checkMapWord(bad, 'key'), InvalidNameError, bad);
    for (const bad of ['alpn h2 ]', 'alpn  h2', 'verify required ca-file x', 'alpn h2;show', 'ALPN h2', 'alpn "h2"', '[alpn h2', 'alpn h2\n'])
      assert.throws(() => checkCrtListOption(bad), InvalidNameError, bad);
    for (const bad of ['a b', 'a;b', '*', '!', 'a..b', '[a]']) assert.throws(() => checkSniFilter(bad), InvalidNameError, bad);
  });

  it('sanitizes PEM: CRLF, blank lines, text around blocks; one trailing newline', () => {
    const pem = 'Bag Attributes\r\n-----BEGIN CERTIFICATE-----\r\nAAAA\r\n\r\nBBBB  \r\n-----END CERTIFICATE-----\r\n\r\n\r\n-----BEGIN PRIVATE KEY-----\nCCCC\n-----END PRIVATE KEY-----';
    assert.equal(
      sanitizePem(pem),
      '-----BEGIN CERTIFICATE-----\nAAAA\nBBBB\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nCCCC\n-----END PRIVATE KEY-----\n',
    );
    // An empty line would end the payload and run what follows as commands: it can't survive.
    const smuggled = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n\nshow info\n';
    assert.equal(sanitizePem(smuggled), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    assert.throws(() => sanitizePem('show info'), InvalidPemError);
    assert.throws(() => sanitizePem('-----BEGIN CERTIFICATE-----\nAAAA\n'), InvalidPemError);
    assert.throws(() => sanitizePem('-----BEGIN CERTIFICATE-----\nA\x01A\n-----END CERTIFICATE-----'), InvalidPemError);
  });
});

describe('reply classification (HAProxy 2.6.12 texts)', () => {
  const cases: [string, string, new (...a: never[]) => Error][] = [
    ['new ssl cert /v/a.pem', "Certificate '/v/a.pem' already exists!", HaproxyExistsError],
    ['new ssl ca-file /v/ca.pem', "CA file '/v/ca.pem' already exists!", HaproxyExistsError],
    ['set ssl cert /v/a.pem', "Can't replace a certificate which is not referenced by the configuration!\nCan't update /v/a.pem!", HaproxyNotFoundError],
    ['set ssl ca-file /v/x.pem', "Can't replace a CA file which is not referenced by the configuration!\nCan't update /v/x.pem!", HaproxyNotFoundError],
    ['set ssl cert /v/a.pem', "Can't update the certificate!\nOperations on certificates are currently locked!", HaproxyLockedError],
    ['add ssl crt-list /l', 'Operations on certificates are currently locked!', HaproxyLockedError],
    ['show ssl cert', "Can't show!\nOperations on certificates are currently locked!", HaproxyLockedError],
    ['set ssl ca-file /v/ca.pem', "Can't update: operations on certificates are currently locked!", HaproxyLockedError],
    ['commit ssl cert /v/a.pem', "No ongoing transaction! !\nCan't commit /v/a.pem!", HaproxyNoTransactionError],
    ['abort ssl cert /v/a.pem', 'No ongoing transaction!', HaproxyNoTransactionError],
    ['commit ssl cert /v/b.pem', "The ongoing transaction is about '/v/a.pem' but you are trying to set '/v/b.pem'\nCan't commit /v/b.pem!", HaproxyTxnMismatchError],
    ['abort ssl cert /v/b.pem', "The ongoing transaction is about '/v/a.pem' but you are trying to abort a transaction for '/v/b.pem'", HaproxyTxnMismatchError],
    ['del ssl cert /v/a.pem', "Can't remove the certificate: certificate '/v/a.pem' in use, can't be deleted!", HaproxyInUseError],
    ['del ssl cert /v/a.pem', "Can't remove the certificate: certificate '/v/a.pem' doesn't exist!", HaproxyNotFoundError],
    ['del ssl ca-file /v/ca.pem', "Can't remove the CA file: CA file '/v/ca.pem' doesn't exist!", HaproxyNotFoundError],
    ['del ssl crt-list /l /v/x.pem', "Can't delete the entry: certificate '/v/x.pem' does not exist!", HaproxyNotFoundError],
    ['del ssl crt-list /nope /v/a.pem', "Can't delete the entry: crt-list '/nope' does not exist!", HaproxyNotFoundError],
    ['del ssl crt-list /l /v/x.pem', "Can't delete the entry: certificate '/v/x.pem' can't be found in crt-list '/l'!", HaproxyNotFoundError],
    ['add ssl crt-list /l', "Can't edit the crt-list: certificate '/v/zzz.pem' does not exist!", HaproxyNotFoundError],
    ['show ssl cert /v/x.pem', "Can't display the certificate: Not found or the certificate is a bundle!", HaproxyNotFoundError],
    ['show ssl crt-list -n /nope', "didn't find the specified filename", HaproxyNotFoundError],
    ['del map /m a', 'Key not found.', HaproxyNotFoundError],
    ['set map /m a 1', 'entry not found.', HaproxyNotFoundError],
    ['show map /nope', 'Unknown map identifier. Please use #<id> or <file>.', HaproxyNotFoundError],
    ['add ssl crt-list /l', "Can't edit the crt-list: parsing [CLI:1]: unknown ssl keyword bogus", HaproxyCommandError],
    ['add ssl crt-list /l', "Can't edit the crt-list: only one line of payload is supported!", HaproxyCommandError],
    ['commit ssl cert /v/k.pem', "inconsistencies between private key and certificate loaded '/v/k.pem'.\nCan't commit /v/k.pem!", HaproxyCommandError],
    ['bogus', 'Unknown command, but maybe one of the following ones is a better match:\n  help', HaproxyCommandError],
  ];
  for (const [command, body, kind] of cases) {
    it(`${command}: ${body.split('\n').at(-1)}`, () => {
      const err = replyError(command, body);
      assert.ok(err instanceof kind, `${err.name}: ${err.message}`);
      assert.match(err.message, new RegExp(command.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    });
  }

  it('matches the success texts, and nothing else as success', () => {
    assert.equal(OK.newCert.exec("New empty certificate store '/v/a.pem'!")?.[1], '/v/a.pem');
    assert.deepEqual(OK.setCert.exec('Transaction updated for certificate /v/a.pem!')?.slice(1), ['updated', '/v/a.pem']);
    assert.deepEqual(OK.setCaFile.exec('transaction created for CA /v/ca.pem!')?.slice(1), ['created', '/v/ca.pem']);
    assert.equal(OK.commit.exec('Committing /v/a.pem\nSuccess!')?.[1], '/v/a.pem');
    assert.equal(OK.commit.exec('Committing /v/m.pem.......\nSuccess!')?.[1], '/v/m.pem');
    assert.equal(OK.abort.exec("Transaction aborted for certificate '/v/a.pem'!")?.[1], '/v/a.pem');
    assert.equal(OK.delCert.exec("Certificate '/v/c.pem' deleted!")?.[1], '/v/c.pem');
    assert.equal(OK.newCaFile.exec("New CA file created '/v/ca.pem'!")?.[1], '/v/ca.pem');
    assert.equal(OK.delCaFile.exec("CA file '/v/ca.pem' deleted!")?.[1], '/v/ca.pem');
    assert.deepEqual(OK.addCrtList.exec("Inserting certificate '/v/a.pem' in crt-list '/l.txt'.\nSuccess!")?.slice(1), ['/v/a.pem', '/l.txt']);
    assert.deepEqual(OK.delCrtList.exec("Entry '/v/x.pem' deleted in crtlist '/l.txt'!")?.slice(1), ['/v/x.pem', '/l.txt']);
    assert.equal(OK.commit.exec("Committing /v/a.pem\ninconsistencies…\nCan't commit /v/a.pem!"), null);
    assert.equal(OK.empty.exec('Key not found.'), null);
  });

  it('reads a refusal from the reply\'s start, and a long listing as a listing', () => {
    assert.equal(isLocked("Can't show!\nOperations on certificates are currently locked!"), true);
    assert.equal(isLocked("Can't update: operations on certificates are currently locked!"), true);
    const listing = `# filename\n${Array.from({ length: 20_000 }, (_, i) => `/v/n${i}.pem`).join('\n')}`;
    assert.equal(isLocked(listing), false);
    assert.equal(showError('show ssl cert', listing), undefined);
    assert.ok(showError('show ssl cert', "Can't show!\nOperations on certificates are currently locked!") instanceof HaproxyLockedError);
    assert.ok(showError('show ssl cert /v/x.pem', "Can't display the certificate: Not found or the certificate is a bundle!") instanceof HaproxyNotFoundError);
  });

  it('finds the line numbers HAProxy offers for duplicate crt-list entries', () => {
    assert.deepEqual(
      severalEntryLines("Can't delete the entry: found the certificate '/v/a.pem' in several entries, please specify a line number preceded by colons (2, 3)!"),
      [2, 3],
    );
    assert.equal(severalEntryLines("Entry '/v/x.pem' deleted in crtlist '/l'!"), undefined);
  });

  it('parses listings', () => {
    assert.deepEqual(parseSslCertList('# transaction\n*/v/a.pem\n# filename\n/d.pem\n/v/a.pem'), { certs: ['/d.pem', '/v/a.pem'], transaction: '/v/a.pem' });
    assert.deepEqual(parseSslCertList('# filename\n/d.pem'), { certs: ['/d.pem'] });
    assert.deepEqual(parseCaFileList('# transaction\n*/v/ca.pem - 1 certificate(s)\n# filename\n/v/ca.pem - 0 certificate(s)\n@system-ca - 144 certificate(s)'), {
      certs: ['/v/ca.pem', '@system-ca'],
      transaction: '/v/ca.pem',
    });
    assert.deepEqual(parseCrtList('# /l.txt\n/d.pem:1\n/v/s.pem:3 [alpn h2,http/1.1\0 verify optional no-ca-names ca-file /v/ca.pem ssl-min-ver TLSv1.2] s.test *.s.test !bad.s.test\n/v/t.pem'), [
      { path: '/d.pem', line: 1, options: [], sni: [] },
      { path: '/v/s.pem', line: 3, options: ['alpn h2,http/1.1', 'verify optional', 'no-ca-names', 'ca-file /v/ca.pem', 'ssl-min-ver TLSv1.2'], sni: ['s.test', '*.s.test', '!bad.s.test'] },
      { path: '/v/t.pem', line: undefined, options: [], sni: [] },
    ]);
    // Read without a regex per line: the forms the regex read the same way (the last `:digits` is
    // the line number, `[…]` only when a space or the end follows, any number of spaces between names).
    assert.deepEqual(parseCrtList('/a:b:12 x.test\n/a:12x y\n/p.pem:4 [] a  b \n/q.pem:8 [alpn h2]x\n/r.pem:9 [alpn h2\n/s.pem: a\n\n# c'), [
      { path: '/a:b', line: 12, options: [], sni: ['x.test'] },
      { path: '/a:12x', line: undefined, options: [], sni: ['y'] },
      { path: '/p.pem', line: 4, options: [], sni: ['a', 'b'] },
      { path: '/q.pem', line: 8, options: [], sni: ['[alpn', 'h2]x'] },
      { path: '/r.pem', line: 9, options: [], sni: ['[alpn', 'h2'] },
      { path: '/s.pem:', line: undefined, options: [], sni: ['a'] },
    ]);
    assert.deepEqual(parseMap('0x561ccfb74190 k1 v1\n0x561ccfb74230 k2 v2'), [
      { ref: '0x561ccfb74190', key: 'k1', value: 'v1' },
      { ref: '0x561ccfb74230', key: 'k2', value: 'v2' },
    ]);
    const info = parseInfo('Name: HAProxy\nVersion: 2.6.12-1+deb12u4\nPid: 4307\nUptime: 0d 0h02m17s\nUptime_sec: 137');
    assert.equal(info.pid, 4307);
    assert.equal(info.uptimeSec, 137);
    assert.equal(info.version, '2.6.12-1+deb12u4');
    assert.throws(() => parseInfo('Unknown command'), HaproxyCommandError);
    const cert = parseSslCertDetails('Filename: /v/a.pem\nStatus: Unused\nSerial: 2BB8\nSubject Alternative Name: DNS:a.test, DNS:b.test\nSHA1 FingerPrint: A021\nOCSP Response Key: ');
    assert.equal(cert.sha1, 'A021');
    assert.deepEqual(cert.san, ['a.test', 'b.test']);
    assert.equal(showError('show ssl cert', '# filename\n/d.pem'), undefined);
  });

  it('strips the payload echo and the prompt', () => {
    assert.equal(replyBody('+ + + Transaction created for certificate /v/a.pem!\n\n> '), 'Transaction created for certificate /v/a.pem!');
    assert.equal(replyBody('+ + + \n> '), '');
    assert.equal(replyBody('\n> '), '');
    assert.equal(replyBody("Can't remove: in use, can't be deleted!\n\n\n> "), "Can't remove: in use, can't be deleted!");
  });
});

/** A fake CLI: answers `prompt`, then each line with `reply(line)` (undefined: stay silent). */
async function fakeCli(reply: (line: string, sock: Socket) => string | undefined): Promise<{ server: Server; address: string }> {
  const server = createServer((sock) => {
    let buf = '';
    let payloadOf: string | undefined;
    sock.setEncoding('utf8');
    sock.on('error', () => undefined);
    sock.on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let command = line;
        if (payloadOf !== undefined) {
          sock.write('+ ');
          if (line !== '') continue;
          command = payloadOf;
          payloadOf = undefined;
        } else if (line === 'prompt') {
          sock.write('\n> ');
          continue;
        } else if (line.endsWith(' <<')) {
          payloadOf = line.slice(0, -3);
          continue;
        }
        const out = reply(command, sock);
        if (out !== undefined) sock.write(`${out}\n\n> `);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, address: `tcp:127.0.0.1:${(server.address() as { port: number }).port}` };
}

describe('RuntimeSession framing (fake CLI)', () => {
  it('frames payloads, strips echoes, keeps one command in flight', async () => {
    const seen: string[] = [];
    const { server, address } = await fakeCli((line) => {
      seen.push(line);
      return line.startsWith('set') ? 'Transaction created for certificate /v/a.pem!' : `ok ${line}`;
    });
    const s = await RuntimeSession.open(parseRuntimeAddress(address));
    try {
      assert.equal(await s.execute('set ssl cert /v/a.pem', 'L1\nL2\n'), 'Transaction created for certificate /v/a.pem!');
      const first = s.execute('show info');
      await assert.rejects(s.execute('show info'), /one call per session/);
      assert.equal(await first, 'ok show info');
      // A pipelined batch: one write, the replies split at each prompt, in order.
      assert.deepEqual(await s.executeAll([{ line: 'show a' }, { line: 'set ssl cert /v/a.pem', payload: 'L1\n' }, { line: 'show b' }]), [
        'ok show a',
        'Transaction created for certificate /v/a.pem!',
        'ok show b',
      ]);
      await assert.rejects(s.executeAll([{ line: 'show a' }, { line: 'bad\nline' }]), InvalidNameError);
      await assert.rejects(s.execute('show info\nshow info'), InvalidNameError);
      await assert.rejects(s.execute('set ssl cert /v/a.pem', 'L1\n\nshow info'), InvalidNameError);
      await assert.rejects(s.execute('set ssl cert /v/a.pem', 'X'.repeat(20_000)), HaproxyCommandError);
      assert.deepEqual(seen, ['set ssl cert /v/a.pem', 'show info', 'show a', 'set ssl cert /v/a.pem', 'show b']);
    } finally {
      s.destroy();
      server.close();
    }
  });

  it('a silent server: bounded connect (unreachable) and bounded reply (timeout, session closed)', async () => {
    const mute = createServer((sock) => sock.on('error', () => undefined));
    mute.listen(0, '127.0.0.1');
    await once(mute, 'listening');
    const silentPrompt = parseRuntimeAddress(`tcp:127.0.0.1:${(mute.address() as { port: number }).port}`);
    await assert.rejects(RuntimeSession.open(silentPrompt, { connectTimeoutMs: 200 }), HaproxyUnreachableError);
    mute.close();

    const { server, address } = await fakeCli(() => undefined);
    const s = await RuntimeSession.open(parseRuntimeAddress(address));
    await assert.rejects(s.execute('show info', undefined, { timeoutMs: 100 }), HaproxyTimeoutError);
    assert.equal(s.closed, true);
    await assert.rejects(s.execute('show info'), HaproxyUnreachableError);
    server.close();
  });

  it('an abort destroys the session and rejects with the abort reason', async () => {
    const { server, address } = await fakeCli(() => undefined);
    const s = await RuntimeSession.open(parseRuntimeAddress(address));
    const ac = new AbortController();
    const p = s.execute('show info', undefined, { signal: ac.signal });
    ac.abort();
    await assert.rejects(p, { name: 'AbortError' });
    assert.equal(s.closed, true);
    server.close();
  });

  it('nothing listening: HaproxyUnreachableError after bounded attempts', async () => {
    const c = new RuntimeClient('unix:/nonexistent/certd-test.sock', { connectAttempts: 2, reconnectDelayMs: 10 });
    await assert.rejects(c.showInfo(), HaproxyUnreachableError);
    c.close();
  });
});

describe('SerialQueue', () => {
  it('runs jobs one at a time in order, survives failures, skips aborted waiters', async () => {
    const q = new SerialQueue();
    const log: string[] = [];
    let running = 0;
    const job = (name: string, fail = false) => async () => {
      running++;
      assert.equal(running, 1);
      log.push(`start ${name}`);
      await new Promise((r) => setTimeout(r, 5));
      log.push(`end ${name}`);
      running--;
      if (fail) throw new Error(name);
      return name;
    };
    const ac = new AbortController();
    const a = q.run(job('a'));
    const b = q.run(job('b', true));
    const c = q.run(job('c'), ac.signal);
    const d = q.run(job('d'));
    ac.abort();
    await assert.rejects(c, { name: 'AbortError' });
    assert.equal(await a, 'a');
    await assert.rejects(b, /b/);
    assert.equal(await d, 'd');
    assert.deepEqual(log, ['start a', 'end a', 'start b', 'end b', 'start d', 'end d']);
    assert.equal(q.size, 0);
  });
});
