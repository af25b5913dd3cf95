/*
 * RuntimeClient against a real HAProxy (Debian's 2.6.12, or 3.0/3.2 in the version matrix): every
 * fact it relies on is exercised here, including the 2.6.12 transaction bug, 3.x's refusal in its
 * place, and the "locked" reply.
 */
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { after, before, describe, it } from 'node:test';
import {
  HaproxyCommandError,
  HaproxyInUseError,
  HaproxyLockedError,
  HaproxyNotFoundError,
  HaproxyTxnMismatchError,
  HaproxyUnreachableError,
  InvalidNameError,
} from '../src/core/errors.js';
import { parseRuntimeAddress } from '../src/haproxy/runtime/address.js';
import { RuntimeClient, runtimeChannel } from '../src/haproxy/runtime/client.js';
import { RuntimeSession } from '../src/haproxy/runtime/session.js';
import { HAPROXY_UNDER_TEST, startHaproxy, type TestHaproxy } from './helpers/haproxy.js';
import { handshake, makeCert } from './helpers/tls.js';

const CHANNEL = runtimeChannel.name;

/** Collects runtime-channel events while `fn` runs. */
async function events<T>(fn: () => Promise<T>): Promise<{ result: T; seen: { event: string; [k: string]: unknown }[] }> {
  const seen: { event: string }[] = [];
  const listener = (m: unknown) => seen.push(m as { event: string });
  subscribe(CHANNEL, listener);
  try {
    return { result: await fn(), seen };
  } finally {
    unsubscribe(CHANNEL, listener);
  }
}

describe('RuntimeClient against a real HAProxy', () => {
  let h: TestHaproxy;
  let client: RuntimeClient;

  before(async () => {
    h = await startHaproxy({ tcpRuntime: true });
    client = new RuntimeClient(h.runtime);
  });
  after(async () => {
    client?.close();
    await h?.stop();
  });

  it('connects over the unix and the tcp socket, and reports the worker pid', async () => {
    const pid = await h.haproxy.workerPid();
    const viaTcp = new RuntimeClient(h.tcpRuntime!);
    try {
      const [unix, tcp] = await Promise.all([client.showInfo(), viaTcp.showInfo()]);
      assert.equal(unix.pid, pid);
      assert.equal(tcp.pid, pid);
      assert.ok(unix.version.startsWith(`${HAPROXY_UNDER_TEST}.`), `${unix.version} is not ${HAPROXY_UNDER_TEST}.x`);
      assert.ok(unix.uptimeSec >= 0);
      assert.equal(unix.raw.Name, 'HAProxy');
      assert.deepEqual((await viaTcp.showSslCerts()).certs, [`${h.dir}/default.pem`]);
    } finally {
      viaTcp.close();
    }
  });

  it('putCert + addCrtListEntry ([alpn] sni): served to new handshakes at once; update; remove', async () => {
    const path = '/v/www.example.test.pem';
    const first = await makeCert('www.example.test');
    await client.putCert(path, first.pem);
    await client.addCrtListEntry(h.crtList, { path, options: { alpn: ['h2', 'http/1.1'] }, sni: ['www.example.test'] });
    const served = await handshake(h.tlsPort, 'www.example.test', { alpn: ['h2', 'http/1.1'] });
    assert.equal(served.serial, first.serial);
    assert.deepEqual(served.san, ['www.example.test']);
    assert.equal(served.alpn, 'h2');
    assert.equal((await handshake(h.tlsPort, 'other.example.test')).serial, h.defaultCert.serial);
    const listed = (await client.showCrtList(h.crtList)).find((e) => e.path === path);
    assert.deepEqual(listed?.options, ['alpn h2,http/1.1']);
    assert.deepEqual(listed?.sni, ['www.example.test']);

    const second = await makeCert('www.example.test');
    await client.putCert(path, second.pem.replace(/\n/g, '\r\n'));
    assert.equal((await handshake(h.tlsPort, 'www.example.test')).serial, second.serial);
    const details = await client.showSslCert(path);
    assert.equal(details.status, 'Used');
    assert.deepEqual(details.san, ['www.example.test']);
    assert.match(details.sha1 ?? '', /^[0-9A-F]{40}$/);

    await assert.rejects(client.delSslCert(path), HaproxyInUseError);
    assert.equal(await client.delCrtListEntry(h.crtList, path), 1);
    await client.delSslCert(path);
    assert.equal((await handshake(h.tlsPort, 'www.example.test')).serial, h.defaultCert.serial);
    assert.ok(!(await client.showSslCerts()).certs.includes(path));
    await assert.rejects(client.showSslCert(path), HaproxyNotFoundError);
    await assert.rejects(client.delSslCert(path), HaproxyNotFoundError);
    await assert.rejects(client.delCrtListEntry(h.crtList, path), HaproxyNotFoundError);
  });

  it('refuses injection attempts before anything is sent', async () => {
    const victim = '/v/victim.pem';
    const cert = await makeCert('victim.test');
    await client.putCert(victim, cert.pem);
    const evilPaths = [
      `/v/x.pem;del ssl cert ${victim}`,
      `/v/x.pem\ndel ssl cert ${victim}`,
      '/v/x y.pem',
      '/v/x.pem#',
      "/v/x'.pem",
      '/v/x".pem',
      '/v/x\\.pem',
      '/v/x.pem <<',
      '-n',
    ];
    // A client that can't connect anywhere proves the refusal happens before sending.
    const nowhere = new RuntimeClient('unix:/nonexistent/certd.sock');
    for (const p of evilPaths) {
      for (const c of [client, nowhere]) {
        await assert.rejects(c.putCert(p, cert.pem), InvalidNameError, JSON.stringify(p));
        await assert.rejects(c.delSslCert(p), InvalidNameError);
        await assert.rejects(c.showCrtList(p), InvalidNameError);
        await assert.rejects(c.addCrtListEntry(h.crtList, { path: p }), InvalidNameError);
        await assert.rejects(c.addMapEntries(p, [['k', 'v']]), InvalidNameError);
      }
    }
    await assert.rejects(nowhere.addCrtListEntry(h.crtList, { path: victim, sni: [`a.test;del ssl cert ${victim}`] }), InvalidNameError);
    await assert.rejects(nowhere.addCrtListEntry(h.crtList, { path: victim, options: { alpn: ['h2] evil.test [alpn h2'] } }), InvalidNameError);
    await assert.rejects(nowhere.addMapEntries(h.map, [[`k;del ssl cert ${victim}`, 'v']]), InvalidNameError);
    await assert.rejects(nowhere.setMap(h.map, 'k', 'v v'), InvalidNameError);
    nowhere.close();

    // Blank lines can't end the payload early: what follows one is not PEM and is dropped.
    await client.putCert('/v/smuggle.pem', `${cert.pem}\n\ndel ssl cert ${victim}\n\n`);
    const certs = (await client.showSslCerts()).certs;
    assert.ok(certs.includes(victim), 'victim still loaded');
    assert.ok(!certs.some((c) => c.startsWith('/v/x')));
    await client.delSslCert('/v/smuggle.pem');
    await client.delSslCert(victim);
  });

  it('measured: with a transaction open on A, "set ssl cert B" lands in A (2.6.12) or is refused naming A (3.x)', async () => {
    const a = await makeCert('fact-a.test');
    const b = await makeCert('fact-b.test');
    const raw = await RuntimeSession.open(parseRuntimeAddress(h.runtime));
    try {
      for (const p of ['/v/fact-a.pem', '/v/fact-b.pem']) assert.match(await raw.execute(`new ssl cert ${p}`), /^New empty certificate store/);
      assert.equal(await raw.execute('set ssl cert /v/fact-a.pem', a.pem), 'Transaction created for certificate /v/fact-a.pem!');
      assert.equal(
        await raw.execute('set ssl cert /v/fact-b.pem', b.pem),
        HAPROXY_UNDER_TEST === '2.6'
          ? 'Transaction updated for certificate /v/fact-a.pem!'
          : "The ongoing transaction is about '/v/fact-a.pem' but you are trying to set '/v/fact-b.pem'\nCan't update /v/fact-b.pem!",
      );
      assert.equal(
        await raw.execute('commit ssl cert /v/fact-b.pem'),
        "The ongoing transaction is about '/v/fact-a.pem' but you are trying to set '/v/fact-b.pem'\nCan't commit /v/fact-b.pem!",
      );
      assert.equal(await raw.execute('abort ssl cert /v/fact-a.pem'), "Transaction aborted for certificate '/v/fact-a.pem'!");
      for (const p of ['/v/fact-a.pem', '/v/fact-b.pem']) assert.equal(await raw.execute(`del ssl cert ${p}`), `Certificate '${p}' deleted!`);
    } finally {
      raw.destroy();
    }
  });

  it('another client holds a transaction on A: putCert(B) aborts it (logged), succeeds within 1 s, never commits B under A', async () => {
    const A = '/v/bug-a.pem';
    const B = '/v/bug-b.pem';
    const [a1, a2, b] = await Promise.all([makeCert('bug-a.test'), makeCert('bug-a.test'), makeCert('bug-b.test')]);
    await client.putCert(A, a1.pem);
    await client.addCrtListEntry(h.crtList, { path: A, sni: ['bug-a.test'] });

    // Our session is already up (its connect-time cleanup is past): another writer opens a
    // transaction on A and leaves it open.
    const other = await RuntimeSession.open(parseRuntimeAddress(h.runtime));
    try {
      assert.match(await other.execute(`set ssl cert ${A}`, a2.pem), /^Transaction created for certificate \/v\/bug-a\.pem!$/);
      const t0 = Date.now();
      const { seen } = await events(() => client.putCert(B, b.pem));
      const took = Date.now() - t0;
      assert.ok(took < 1_000, `the push took ${took} ms`);
      assert.ok(seen.some((e) => e.event === 'foreign-transaction-aborted' && e.named === A && e.path === B));
      assert.equal((await client.showSslCerts()).transaction, undefined, "the other client's transaction was aborted");
      await client.addCrtListEntry(h.crtList, { path: B, sni: ['bug-b.test'] });
      assert.equal((await handshake(h.tlsPort, 'bug-b.test')).serial, b.serial);
      assert.equal((await handshake(h.tlsPort, 'bug-a.test')).serial, a1.serial, 'A still serves its own certificate');
      assert.equal((await client.showSslCert(A)).serial?.toLowerCase(), a1.serial.toLowerCase());

      // A transaction left open *before* a session connects is aborted at connect.
      assert.match(await other.execute(`set ssl cert ${A}`, a2.pem), /^Transaction created/);
      const fresh = new RuntimeClient(h.runtime);
      try {
        const { seen: atConnect } = await events(() => fresh.putCert(B, b.pem));
        assert.ok(atConnect.some((e) => e.event === 'stale-transaction-aborted' && e.path === A));
        assert.equal((await handshake(h.tlsPort, 'bug-a.test')).serial, a1.serial);
        assert.equal((await fresh.showSslCerts()).transaction, undefined);
      } finally {
        fresh.close();
      }
    } finally {
      other.destroy();
    }
    for (const p of [A, B]) {
      await client.delCrtListEntry(h.crtList, p);
      await client.delSslCert(p);
    }
  });

  it('20 concurrent putCert + addCrtListEntry on one client: all served correctly', async () => {
    const certs = await Promise.all(Array.from({ length: 20 }, (_, i) => makeCert(`c${i}.conc.test`)));
    await Promise.all(
      certs.map(async (c, i) => {
        await client.putCert(`/v/conc-${i}.pem`, c.pem);
        await client.addCrtListEntry(h.crtList, { path: `/v/conc-${i}.pem`, sni: [`c${i}.conc.test`] });
      }),
    );
    const served = await Promise.all(certs.map((_, i) => handshake(h.tlsPort, `c${i}.conc.test`)));
    assert.deepEqual(
      served.map((s) => s.serial),
      certs.map((c) => c.serial),
    );
    assert.equal((await client.showSslCerts()).transaction, undefined);
  });

  it('"currently locked" is retried with backoff (and typed when retries are off)', async () => {
    // A commit of a certificate used by many crt-list lines holds the lock for a while (~0.6 s).
    const busy = '/v/busy.pem';
    const [c1, c2, other] = await Promise.all([makeCert('busy.test'), makeCert('busy.test'), makeCert('patient.test')]);
    await client.putCert(busy, c1.pem);
    const raw = await RuntimeSession.open(parseRuntimeAddress(h.runtime));
    const impatient = new RuntimeClient(h.runtime, { lockedRetries: 0 });
    try {
      for (let i = 0; i < 2000; i++) await raw.execute(`add ssl crt-list ${h.crtList}`, `${busy} b${i}.busy.test`);
      await impatient.showInfo();
      assert.match(await raw.execute(`set ssl cert ${busy}`, c2.pem), /^Transaction created/);
      const commit = raw.execute(`commit ssl cert ${busy}`, undefined, { timeoutMs: 60_000 });
      await new Promise((r) => setTimeout(r, 30));
      await assert.rejects(impatient.newSslCert('/v/impatient.pem'), HaproxyLockedError);
      const { seen } = await events(() => client.putCert('/v/patient.pem', other.pem));
      assert.ok(seen.some((e) => e.event === 'locked-retry'), 'the lock was met and retried');
      assert.match(await commit, /^Committing \/v\/busy\.pem\.*\nSuccess!$/);
      assert.equal((await handshake(h.tlsPort, 'b1999.busy.test')).serial, c2.serial);
      // The 2000 lines stay: deleting them one by one takes ~12 ms each on 2.6.12 (measured).
      await client.delSslCert('/v/patient.pem');
    } finally {
      raw.destroy();
      impatient.close();
    }
  });

  it('delCrtListEntry removes every line of a path (HAProxy wants path:line when there are several)', async () => {
    const dup = await makeCert('dup.test');
    await client.putCert('/v/dup.pem', dup.pem);
    for (const sni of ['dup.test', 'dup2.test', 'dup3.test']) await client.addCrtListEntry(h.crtList, { path: '/v/dup.pem', sni: [sni] });
    assert.equal((await client.showCrtList(h.crtList)).filter((e) => e.path === '/v/dup.pem').length, 3);
    assert.equal(await client.delCrtListEntry(h.crtList, '/v/dup.pem'), 3);
    assert.equal((await client.showCrtList(h.crtList)).filter((e) => e.path === '/v/dup.pem').length, 0);
    await client.delSslCert('/v/dup.pem');
  });

  it('putNewCertsAndListEntries: many new certificates in one write; a refused one and a foreign transaction cost only themselves; showSslCertMany reads them back', async () => {
    const certs = await Promise.all(['b1', 'b2', 'b3', 'b4'].map((n) => makeCert(`${n}.batch.test`)));
    const other = await makeCert('wrong-key.batch.test');
    const item = (n: string, pem: string) => ({ entry: { path: `/v/${n}-batch.pem`, sni: [`${n}.batch.test`] }, pem });
    const raw = await RuntimeSession.open(parseRuntimeAddress(h.runtime));
    try {
      // Another client holds a transaction on A while the batch goes out.
      const a = await makeCert('held.batch.test');
      assert.match(await raw.execute('new ssl cert /v/held-batch-a.pem'), /^New empty/);
      assert.match(await raw.execute('set ssl cert /v/held-batch-a.pem', a.pem), /^Transaction created/);
      const outcomes = await client.putNewCertsAndListEntries(h.crtList, [
        item('b1', certs[0]!.pem),
        item('b2', certs[1]!.certPem + other.keyPem),
        item('b3', certs[2]!.pem),
        item('b4', certs[3]!.pem),
      ]);
      assert.equal(outcomes[0], undefined);
      assert.ok(outcomes[1] instanceof HaproxyCommandError, 'the mismatched key is refused');
      assert.deepEqual([outcomes[2], outcomes[3]], [undefined, undefined]);
      for (const i of [0, 2, 3]) assert.equal((await handshake(h.tlsPort, `b${i + 1}.batch.test`)).serial, certs[i]!.serial);
      assert.equal((await handshake(h.tlsPort, 'b2.batch.test')).serial, h.defaultCert.serial);
      const list = await client.showCrtList(h.crtList);
      for (const n of ['b1', 'b3', 'b4']) assert.equal(list.filter((e) => e.path === `/v/${n}-batch.pem`).length, 1, `${n} listed once`);
      assert.equal((await client.showSslCerts()).transaction, undefined, 'no transaction left open');
      assert.equal((await client.showSslCert('/v/held-batch-a.pem')).serial, undefined, 'nothing committed under A');
    } finally {
      raw.destroy();
    }
    const sent = client.commandsSent;
    const read = await client.showSslCertMany(['/v/b1-batch.pem', '/v/nowhere.pem', '/v/b4-batch.pem']);
    assert.equal(client.commandsSent - sent, 3, 'one command per certificate, in one write');
    assert.equal(read[0]?.serial?.toLowerCase().replace(/^0+/, ''), certs[0]!.serial.replace(/^0+/, ''));
    assert.equal(read[1], undefined);
    assert.ok(read[2]?.sha1);
  });

  it('putNewCertsPipelined: batches streamed two at a time; a refusal in one (2.6 keeps its transaction open, capturing the sets sent behind it) costs only itself; a bad path only its item', async () => {
    const names = Array.from({ length: 9 }, (_, i) => `p${i}.stream.test`);
    const certs = await Promise.all(names.map((n) => makeCert(n)));
    const other = await makeCert('wrong-key.stream.test');
    const item = (i: number, pem = certs[i]!.pem) => ({ entry: { path: `/v/p${i}-stream.pem`, sni: [names[i]!] }, pem });
    const batches = [
      [item(0), item(1, certs[1]!.certPem + other.keyPem), item(2)],
      [item(3), { entry: { path: '/v/bad path.pem', sni: ['x.stream.test'] }, pem: certs[3]!.pem }, item(4)],
      [item(5), item(6), item(7), item(8)],
    ];
    const settled: (Error | undefined)[][] = [];
    let asked = 0;
    const sent = client.commandsSent;
    await client.putNewCertsPipelined(h.crtList, async () => {
      const batch = batches[asked++];
      if (!batch) return undefined;
      return { items: batch, settle: (out) => void settled.push(out) };
    });
    assert.equal(settled.length, 3, 'each batch settled once, in order');
    assert.equal(settled[0]![0], undefined);
    assert.ok(settled[0]![1] instanceof HaproxyCommandError, 'the mismatched key is refused');
    assert.equal(settled[0]![2], undefined);
    assert.deepEqual([settled[1]![0], settled[1]![2]], [undefined, undefined]);
    assert.ok(settled[1]![1] instanceof Error, 'the bad path is refused before sending');
    assert.deepEqual(settled[2], [undefined, undefined, undefined, undefined]);
    assert.ok(client.commandsSent - sent >= 5 * 8, 'every valid item went out');
    for (const i of [0, 2, 3, 4, 5, 6, 7, 8]) assert.equal((await handshake(h.tlsPort, names[i]!)).serial, certs[i]!.serial, names[i]);
    assert.equal((await handshake(h.tlsPort, names[1]!)).serial, h.defaultCert.serial);
    const list = await client.showCrtList(h.crtList);
    for (const i of [0, 2, 3, 4, 5, 6, 7, 8]) assert.equal(list.filter((e) => e.path === `/v/p${i}-stream.pem`).length, 1, `p${i} listed once`);
    assert.equal(list.filter((e) => e.path === '/v/p1-stream.pem').length, 0);
    assert.equal((await client.showSslCerts()).transaction, undefined, 'no transaction left open');
  });

  it('putCertAndListEntry of a new certificate (one round trip): served; a refused one or a foreign transaction serves nothing', async () => {
    const listed = async (path: string) => (await client.showCrtList(h.crtList)).some((e) => e.path === path);
    const good = await makeCert('one.trip.test');
    await client.putCertAndListEntry(h.crtList, { path: '/v/one-trip.pem', sni: ['one.trip.test'] }, good.pem);
    assert.equal((await handshake(h.tlsPort, 'one.trip.test')).serial, good.serial);

    // Key and certificate do not match: the commit fails, the add finds the store empty.
    const other = await makeCert('bad.trip.test');
    await assert.rejects(client.putCertAndListEntry(h.crtList, { path: '/v/bad-trip.pem', sni: ['bad.trip.test'] }, good.certPem + other.keyPem), (err: Error) => {
      assert.ok(err instanceof HaproxyCommandError);
      assert.match(err.message, /inconsistencies between private key and certificate/);
      return true;
    });
    assert.equal(await listed('/v/bad-trip.pem'), false);
    assert.equal((await handshake(h.tlsPort, 'bad.trip.test')).serial, h.defaultCert.serial);
    assert.equal((await client.showSslCerts()).transaction, undefined);

    const raw = await RuntimeSession.open(parseRuntimeAddress(h.runtime));
    try {
      // Another client's transaction open on A: in the batch, our set lands in A (2.6.12) or is
      // refused (3.x), commit B is refused and the add finds B empty; A's transaction is aborted
      // and B set, committed and listed again: served once, nothing committed under A.
      const a = await makeCert('held.trip.test');
      const held = await makeCert('held.trip.test');
      assert.match(await raw.execute('new ssl cert /v/held-a.pem'), /^New empty/);
      assert.match(await raw.execute('set ssl cert /v/held-a.pem', a.pem), /^Transaction created/);
      const { seen } = await events(() => client.putCertAndListEntry(h.crtList, { path: '/v/held-b.pem', sni: ['held.trip.test'] }, held.pem));
      assert.ok(seen.some((e) => e.event === 'foreign-transaction-aborted' && e.named === '/v/held-a.pem'));
      assert.equal((await client.showCrtList(h.crtList)).filter((e) => e.path === '/v/held-b.pem').length, 1);
      assert.equal((await handshake(h.tlsPort, 'held.trip.test')).serial, held.serial);
      assert.equal((await client.showSslCerts()).transaction, undefined, "the other client's transaction was aborted");
      assert.equal((await client.showSslCert('/v/held-a.pem')).serial, undefined, 'nothing was committed under A');

      // A transaction someone left open on the new path itself does not stop ours (the `abort` in the
      // batch drops it; what it would have carried along is not visible from here): ours is served.
      const stale = await makeCert('own.trip.test');
      const fresh = await makeCert('own.trip.test');
      assert.match(await raw.execute('new ssl cert /v/own-trip.pem'), /^New empty/);
      assert.match(await raw.execute('set ssl cert /v/own-trip.pem', stale.pem), /^Transaction created/);
      await client.putCertAndListEntry(h.crtList, { path: '/v/own-trip.pem', sni: ['own.trip.test'] }, fresh.pem);
      assert.equal((await handshake(h.tlsPort, 'own.trip.test')).serial, fresh.serial);
    } finally {
      raw.destroy();
    }
    for (const p of ['/v/one-trip.pem', '/v/own-trip.pem', '/v/held-b.pem']) await client.delCrtListEntry(h.crtList, p);
    for (const p of ['/v/one-trip.pem', '/v/own-trip.pem', '/v/bad-trip.pem', '/v/held-a.pem', '/v/held-b.pem']) await client.delSslCert(p);
  });

  it('our own transaction open on A is never thrown away for B: putCert(B) is a mismatch until A is committed', async () => {
    const A = '/v/own-a.pem';
    const B = '/v/own-b.pem';
    const [a, b] = await Promise.all([makeCert('own-a.test'), makeCert('own-b.test')]);
    await client.newSslCert(A);
    await client.setSslCert(A, a.pem);
    const { seen } = await events(() => assert.rejects(client.putCert(B, b.pem), HaproxyTxnMismatchError));
    assert.ok(seen.some((e) => e.event === 'txn-mismatch' && e.named === A));
    assert.ok(!seen.some((e) => e.event === 'foreign-transaction-aborted'));
    if (HAPROXY_UNDER_TEST === '2.6') {
      // 2.6.12 put B's PEM into A's transaction: it had to go, and nothing of it was committed.
      assert.equal((await client.showSslCerts()).transaction, undefined);
      assert.equal((await client.showSslCert(A)).serial, undefined);
    } else {
      assert.equal((await client.showSslCerts()).transaction, A, 'ours is still open');
      await client.commitSslCert(A);
      assert.equal((await client.showSslCert(A)).serial?.toLowerCase(), a.serial.toLowerCase());
    }
    await client.putCert(B, b.pem);
    assert.equal((await client.showSslCert(B)).serial?.toLowerCase(), b.serial.toLowerCase());
    for (const p of [A, B]) await client.delSslCert(p);
  });

  it('a failed commit is aborted, not left open', async () => {
    const a = await makeCert('mismatch.test');
    const b = await makeCert('mismatch.test');
    const certOnly = a.certPem;
    await assert.rejects(client.putCert('/v/badkey.pem', certOnly + b.keyPem), (err: Error) => {
      assert.ok(err instanceof HaproxyCommandError);
      assert.match(err.message, /inconsistencies between private key and certificate/);
      return true;
    });
    assert.equal((await client.showSslCerts()).transaction, undefined);
    await client.delSslCert('/v/badkey.pem');
  });

  it('refuses a command larger than HAProxy\'s buffer before sending (2.6 would drop or crash)', async () => {
    const a = await makeCert('big.test');
    const chain = a.certPem.repeat(Math.ceil(17_000 / a.certPem.length));
    await assert.rejects(client.putCert('/v/big.pem', a.keyPem + chain), HaproxyCommandError);
    assert.equal((await client.showInfo()).pid, await h.haproxy.workerPid());
  });

  it('maps: add, set, show, del', async () => {
    await client.addMapEntries(h.map, [['a.test', '1'], ['b.test', '3']]);
    await client.setMap(h.map, 'a.test', '2');
    await client.setMap(h.map, 'b.test', '4');
    assert.deepEqual(
      (await client.showMap(h.map)).map((e) => [e.key, e.value]),
      [
        ['a.test', '2'],
        ['b.test', '4'],
      ],
    );
    await assert.rejects(client.setMap(h.map, 'zz.test', '1'), HaproxyNotFoundError);
    await client.delMap(h.map, 'a.test');
    await client.delMap(h.map, 'b.test');
    await assert.rejects(client.delMap(h.map, 'a.test'), HaproxyNotFoundError);
    await assert.rejects(client.showMap('/nonexistent.map'), HaproxyNotFoundError);
    await assert.rejects(client.addMapEntries('/nonexistent.map', [['k', 'v']]), HaproxyNotFoundError);
    assert.deepEqual(await client.showMap(h.map), []);
  });

  it('listings "since" a digest: a byte-identical reply is not parsed again; a change, or our own cert command, is', async () => {
    await client.addMapEntries(h.map, [['since.test', '1']]);
    const map1 = await client.showMapSince(h.map, undefined);
    assert.deepEqual(map1.value?.map((e) => e.key), ['since.test']);
    assert.deepEqual(await client.showMapSince(h.map, map1.digest), { digest: map1.digest });
    await client.setMap(h.map, 'since.test', '2');
    const map2 = await client.showMapSince(h.map, map1.digest);
    assert.notEqual(map2.digest, map1.digest);
    assert.equal(map2.value?.[0]?.value, '2');
    await client.delMap(h.map, 'since.test');
    const list = await client.showCrtListSince(h.crtList, undefined);
    assert.ok(list.value);
    assert.deepEqual(await client.showCrtListSince(h.crtList, list.digest), { digest: list.digest });
    const certs = await client.showSslCertsSince(undefined);
    assert.ok(certs.value);
    assert.equal((await client.showSslCertsSince(certs.digest)).value, undefined);
    // Our own add changes what the client believes HAProxy has: the next listing is parsed, whatever its digest.
    const cert = await makeCert('since.example.test');
    await client.putCertAndListEntry(h.crtList, { path: '/v/since.pem', sni: ['since.example.test'] }, cert.pem);
    const afterAdd = await client.showSslCertsSince(certs.digest);
    assert.ok(afterAdd.value?.certs.includes('/v/since.pem'));
    await client.delCrtListEntry(h.crtList, '/v/since.pem');
    await client.delSslCert('/v/since.pem');
    await assert.rejects(client.showMapSince('/nonexistent.map', map1.digest), HaproxyNotFoundError);
  });

  it('maps: many entries in payload commands, split under the command size cap', async () => {
    const entries = Array.from({ length: 3_000 }, (_, i) => [`name-${i}.bulk.test`, `id-${i}`] as const);
    await client.addMapEntries(h.map, entries);
    const shown = await client.showMap(h.map);
    assert.deepEqual(shown.map((e) => [e.key, e.value]), entries);
    await assert.rejects(client.addMapEntries(h.map, [['ok.test', 'v'], ['bad key', 'v']]), InvalidNameError);
    for (const [k] of entries) await client.delMap(h.map, k);
    assert.deepEqual(await client.showMap(h.map), []);
  });

  it('CA files: put, list, use in a crt-list line, delete', async () => {
    const ca = await makeCert('client-ca.test');
    const leaf = await makeCert('mtls.test');
    await client.putCaFile('/v/clients-ca.pem', ca.certPem);
    assert.ok((await client.showSslCaFiles()).certs.includes('/v/clients-ca.pem'));
    await client.putCert('/v/mtls.pem', leaf.pem);
    await client.addCrtListEntry(h.crtList, { path: '/v/mtls.pem', options: { clientAuth: 'optional', caFile: '/v/clients-ca.pem' }, sni: ['mtls.test'] });
    assert.equal((await handshake(h.tlsPort, 'mtls.test')).serial, leaf.serial);
    await client.delCrtListEntry(h.crtList, '/v/mtls.pem');
    await client.delSslCert('/v/mtls.pem');
    await client.delSslCaFile('/v/clients-ca.pem');
    await assert.rejects(client.delSslCaFile('/v/clients-ca.pem'), HaproxyNotFoundError);
  });

  it('replaces idle sessions and survives HAProxy closing an idle one', async () => {
    const idle = new RuntimeClient(h.runtime, { idleTimeoutMs: 200 });
    try {
      const { seen } = await events(async () => {
        await idle.showInfo();
        await new Promise((r) => setTimeout(r, 300));
        await idle.showInfo();
        // HAProxy closes this session after 1 s idle; the next call reconnects.
        assert.equal(await idle.raw('set timeout cli 1'), '');
        await new Promise((r) => setTimeout(r, 1_300));
        await idle.showInfo();
      });
      assert.equal(seen.filter((e) => e.event === 'connect').length, 3);
    } finally {
      idle.close();
    }
  });

  it('an aborted call never runs; the client stays usable', async () => {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(client.putCert('/v/aborted.pem', h.defaultCert.pem, { signal: ac.signal }), { name: 'AbortError' });
    assert.ok(!(await client.showSslCerts()).certs.includes('/v/aborted.pem'));
  });
});

describe('RuntimeClient when HAProxy dies', () => {
  it('fails fast with HaproxyUnreachableError, then recovers after a restart', async () => {
    const h = await startHaproxy();
    const client = new RuntimeClient(h.runtime, { connectAttempts: 3, reconnectDelayMs: 50 });
    try {
      const cert = await makeCert('phoenix.test');
      await client.putCert('/v/phoenix.pem', cert.pem);
      await client.addCrtListEntry(h.crtList, { path: '/v/phoenix.pem', sni: ['phoenix.test'] });
      const before = (await client.showInfo()).pid;

      await h.haproxy.kill();
      const started = performance.now();
      await assert.rejects(client.showInfo(), HaproxyUnreachableError);
      await assert.rejects(client.putCert('/v/phoenix.pem', cert.pem), HaproxyUnreachableError);
      // Bounded, not a timing assertion: without bounds these would hang on the dead socket.
      assert.ok(performance.now() - started < 10_000);

      await h.haproxy.start();
      const info = await client.showInfo();
      assert.notEqual(info.pid, before);
      assert.ok(!(await client.showSslCerts()).certs.includes('/v/phoenix.pem'), 'runtime changes do not survive a restart');
      await client.putCert('/v/phoenix.pem', cert.pem);
      await client.addCrtListEntry(h.crtList, { path: '/v/phoenix.pem', sni: ['phoenix.test'] });
      assert.equal((await handshake(h.tlsPort, 'phoenix.test')).serial, cert.serial);
    } finally {
      client.close();
      await h.stop();
    }
  });
});
