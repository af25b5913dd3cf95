import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseBundle, pemBlocks } from '../src/core/bundle.js';
import { errorCode } from '../src/core/errors.js';
import { subscribe } from 'node:diagnostics_channel';
import { acmeChannel, acmeKeys, AcmeIssuer, type AcmeIssuerOptions } from '../src/issuers/acme/index.js';
import { FsStore } from '../src/store/fs/fs-store.js';
import { freePort } from './helpers/ports.js';
import { startHttp01Responder, startPebble, type Http01Responder, type TestPebble } from './helpers/pebble.js';
import { tempDir } from './helpers/temp-dir.js';

const run = promisify(execFile);

/*
 * Real Pebble, validating for real (PEBBLE_VA_NOSLEEP only): HTTP-01 against a node:http
 * responder, DNS-01 through pebble-challtestsrv. Nonce rejection stays at Pebble's default 5 %,
 * so the badNonce retry path runs in every test here.
 */

const EAB_KID = 'kid-1';
const EAB_KEY = 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W';

let dir: string;
let responder: Http01Responder;
let pebble: TestPebble;
let store: FsStore;
let seq = 0;

const events: { event: string; issuer?: string }[] = [];
subscribe(acmeChannel.name, (msg) => events.push(msg as { event: string; issuer?: string }));
const registrations = (issuer: string) => events.filter((e) => e.event === 'account-registered' && e.issuer === issuer).length;

/** A fresh name per issue: Pebble reuses valid authorizations, which would skip validation. */
const fresh = (label = 'host') => `${label}-${process.pid}-${seq++}.example.com`;

function issuer(over: Partial<AcmeIssuerOptions> = {}, target = pebble): AcmeIssuer {
  return new AcmeIssuer({
    id: 'pebble',
    directory: target.directoryUrl,
    caBundle: target.tlsCaPem,
    email: 'ops@example.com',
    challenge: 'http-01',
    solvers: { 'http-01': responder.solver, 'dns-01': target.dns01Solver },
    store,
    onWarning: (err) => assert.fail(err),
    ...over,
  });
}

let files = 0;
async function file(text: string): Promise<string> {
  const path = join(dir, `f${files++}.pem`);
  await writeFile(path, text);
  return path;
}

/** `openssl verify` of the leaf against `rootPem`, with the rest of the chain as untrusted intermediates. */
async function assertChainVerifies(certPem: string, rootPem: string): Promise<void> {
  const blocks = pemBlocks(certPem);
  assert.ok(blocks.length >= 2, 'leaf and intermediate');
  const inter = await file(blocks.slice(1).map((b) => b.pem).join(''));
  const { stdout } = await run('openssl', [
    'verify', '-purpose', 'sslserver', '-CAfile', await file(rootPem), '-untrusted', inter, await file(blocks[0]!.pem),
  ]);
  assert.match(stdout, /: OK\n$/);
}

function sans(certPem: string): string[] {
  return (new X509Certificate(certPem).subjectAltName ?? '').split(', ').map((s) => s.replace(/^DNS:/, '')).sort();
}

before(async () => {
  dir = tempDir('certd-acme-');
  responder = await startHttp01Responder();
  pebble = await startPebble({ httpPort: responder.port });
  store = await FsStore.open(join(dir, 'data'));
});

after(async () => {
  await pebble?.stop();
  await responder?.stop();
  await store?.close();
});

describe('AcmeIssuer against Pebble', () => {
  it('issues over HTTP-01: the chain verifies against Pebble root, parseBundle accepts it, cleanup ran', async () => {
    const acme = issuer();
    const name = fresh();
    const before = { presented: responder.solver.presented, cleaned: responder.solver.cleaned };
    const bundle = await acme.issue({ names: [name] });

    await assertChainVerifies(bundle.certPem, pebble.rootPem);
    const parsed = parseBundle(bundle.certPem, bundle.keyPem);
    assert.deepEqual(parsed.names, [name]);
    assert.equal(new X509Certificate(bundle.certPem).publicKey.asymmetricKeyType, 'ec');
    const presented = responder.solver.presented - before.presented;
    // Pebble may reuse an authorization, but this name is new to it.
    assert.equal(presented, 1);
    assert.equal(responder.solver.cleaned - before.cleaned, presented, 'every present() has its cleanup()');
    assert.equal(responder.tokens.size, 0);
  });

  it('issues one certificate for several names (one order, parallel authorizations), RSA on request', async () => {
    const names = [fresh('a'), fresh('b'), fresh('c')];
    const bundle = await issuer().issue({ names, keyType: 'rsa-2048' });
    await assertChainVerifies(bundle.certPem, pebble.rootPem);
    assert.deepEqual(sans(bundle.certPem), [...names].sort());
    assert.equal(new X509Certificate(bundle.certPem).subject, `CN=${names[0]}`);
    assert.equal(new X509Certificate(bundle.certPem).publicKey.asymmetricKeyType, 'rsa');
    assert.equal(responder.tokens.size, 0);
  });

  it('registers the account once and reuses it across issues and issuer instances', async () => {
    const keys = acmeKeys('reuse');
    await issuer({ id: 'reuse' }).issue({ names: [fresh()] });
    const stored = (await store.getBlob(keys.account))!.toString('utf8');
    const doc = JSON.parse(stored) as { url: string; directory: string; key: { d?: string } };
    assert.equal(doc.directory, pebble.directoryUrl);
    assert.ok(doc.key.d, 'the private key is stored');

    // A second instance (a daemon restart) finds the stored account and does not register again.
    await issuer({ id: 'reuse' }).issue({ names: [fresh()] });
    assert.equal((await store.getBlob(keys.account))!.toString('utf8'), stored);
    assert.deepEqual(await readdir(join(store.dataDir, 'blobs', 'acme', 'reuse')), ['account.json']);
    assert.equal(registrations('reuse'), 1);
    const { mode } = await stat(join(store.dataDir, 'blobs', keys.account));
    assert.equal(mode & 0o777, 0o600, 'the account key is a secret blob');
  });

  it('issues 10 concurrently on one account with 5 % of nonces rejected', async () => {
    const acme = issuer({ id: 'concurrent' });
    const names = Array.from({ length: 10 }, () => fresh('many'));
    const bundles = await Promise.all(names.map((name) => acme.issue({ names: [name] })));
    bundles.forEach((b, i) => assert.deepEqual(parseBundle(b.certPem, b.keyPem).names, [names[i]]));
    assert.deepEqual(await readdir(join(store.dataDir, 'blobs', 'acme', 'concurrent')), ['account.json']);
    assert.equal(registrations('concurrent'), 1, 'one registration shared by all ten');
    assert.equal(responder.tokens.size, 0);
  });

  it('wildcard with http-01 fails before any order, with a clear error', async () => {
    const presented = responder.solver.presented;
    await assert.rejects(issuer().issue({ names: [`*.${fresh()}`] }), (err: Error) => {
      assert.equal(errorCode(err), 'CERTD_E_ACME_CHALLENGE');
      assert.match(err.message, /wildcard.*dns-01/);
      return true;
    });
    assert.equal(responder.solver.presented, presented);
  });

  it('issues a wildcard and its base name over DNS-01 (TXT records through challtestsrv)', async () => {
    const base = fresh('wild');
    const dns = pebble.dns01Solver;
    const before = { presented: dns.presented, cleaned: dns.cleaned };
    const bundle = await issuer({ challenge: 'dns-01' }).issue({ names: [base, `*.${base}`] });
    await assertChainVerifies(bundle.certPem, pebble.rootPem);
    assert.deepEqual(sans(bundle.certPem), [`*.${base}`, base].sort());
    assert.equal(dns.presented - before.presented, 2);
    assert.equal(dns.cleaned - before.cleaned, 2);
  });

  it('a wrong challenge response is CERTD_E_ACME_UNAUTHORIZED with the CA detail, and cleanup still runs', async () => {
    const before = { presented: responder.solver.presented, cleaned: responder.solver.cleaned };
    responder.answerOverride = 'not-the-key-authorization';
    try {
      await assert.rejects(issuer().issue({ names: [fresh('wrong')] }), (err: Error & { detail?: string }) => {
        assert.equal(errorCode(err), 'CERTD_E_ACME_UNAUTHORIZED');
        assert.ok(err.detail && err.detail.length > 0, 'carries the CA detail');
        assert.match(err.message, /validation of wrong-/);
        return true;
      });
    } finally {
      responder.answerOverride = undefined;
    }
    assert.equal(responder.solver.presented - before.presented, 1);
    assert.equal(responder.solver.cleaned - before.cleaned, 1);
    assert.equal(responder.tokens.size, 0);
  });

  it('a name the CA cannot connect to is CERTD_E_ACME_CONNECTION; cleanup runs', async () => {
    // ::1 resolves to itself; the responder listens on 127.0.0.1 only, so the CA is refused.
    const before = responder.solver.cleaned;
    await assert.rejects(issuer().issue({ names: ['::1'] }), (err: Error) => {
      assert.equal(errorCode(err), 'CERTD_E_ACME_CONNECTION');
      return true;
    });
    assert.equal(responder.solver.cleaned - before, 1);
  });

  it('a name the CA refuses is a typed error and nothing is presented', async () => {
    const presented = responder.solver.presented;
    await assert.rejects(issuer().issue({ names: ['bad_name.example.com'] }), (err: Error & { detail?: string }) => {
      assert.equal(errorCode(err), 'CERTD_E_ACME_MALFORMED');
      assert.match(err.detail ?? '', /illegal character/);
      return true;
    });
    assert.equal(responder.solver.presented, presented);
  });

  it('an aborted issue rejects with the abort reason and cleans up', async () => {
    const controller = new AbortController();
    const cleaned = responder.solver.cleaned;
    const acme = issuer({
      solvers: {
        'http-01': {
          async present(token, keyAuthorization, signal) {
            await responder.solver.present(token, keyAuthorization, signal);
            controller.abort(new Error('operator cancelled'));
          },
          cleanup: (token) => responder.solver.cleanup(token),
        },
      },
    });
    await assert.rejects(acme.issue({ names: [fresh('abort')], signal: controller.signal }), /operator cancelled/);
    assert.equal(responder.solver.cleaned - cleaned, 1);
    assert.equal(responder.tokens.size, 0);
  });

  it('Pebble 2.4 offers no profiles and no ARI: a configured profile and replaces are left out', async () => {
    const acme = issuer({ profile: 'shortlived' });
    const first = await acme.issue({ names: [fresh('profile')] });
    assert.equal(await acme.renewalInfo(first.certPem), undefined);
    const renewed = await acme.issue({ names: [fresh('profile')], replaces: first.certPem });
    await assertChainVerifies(renewed.certPem, pebble.rootPem);
  });

  it('an unreachable CA (closed port) fails fast with CERTD_E_ACME_UNREACHABLE and stores nothing', async () => {
    const port = await freePort(); // closed again: nothing listens there
    const started = Date.now();
    const acme = issuer({ id: 'unreachable', directory: `https://127.0.0.1:${port}/dir` });
    await assert.rejects(acme.issue({ names: [fresh()] }), (err: Error) => {
      assert.equal(errorCode(err), 'CERTD_E_ACME_UNREACHABLE');
      assert.match(err.message, /ECONNREFUSED/);
      return true;
    });
    assert.ok(Date.now() - started < 2_000, 'no waiting on a refused connection');
    assert.equal(await store.getBlob(acmeKeys('unreachable').account), undefined);
  });

  it('a CA whose TLS is not trusted is CERTD_E_ACME_UNREACHABLE with a caBundle hint', async () => {
    const acme = issuer({ id: 'untrusted', caBundle: undefined });
    await assert.rejects(acme.issue({ names: [fresh()] }), (err: Error) => {
      assert.equal(errorCode(err), 'CERTD_E_ACME_UNREACHABLE');
      assert.match(err.message, /caBundle/);
      return true;
    });
  });
});

describe('AcmeIssuer: alternate chains', () => {
  let alt: TestPebble;
  before(async () => {
    alt = await startPebble({ httpPort: responder.port, alternateRoots: 2 });
  });
  after(async () => alt?.stop());

  it('picks the chain issued by preferredChain, the default chain otherwise', async () => {
    const root2 = await alt.root(2);
    const cn = /CN=(.*)/.exec(new X509Certificate(root2).subject)![1]!;
    const preferred = await issuer({ id: 'alt', preferredChain: cn }, alt).issue({ names: [fresh('alt')] });
    await assertChainVerifies(preferred.certPem, root2);
    await assert.rejects(assertChainVerifies(preferred.certPem, alt.rootPem));

    const fallback = await issuer({ id: 'alt', preferredChain: 'No Such Root' }, alt).issue({ names: [fresh('alt')] });
    await assertChainVerifies(fallback.certPem, alt.rootPem);
  });
});

describe('AcmeIssuer: external account binding', () => {
  let eab: TestPebble;
  before(async () => {
    eab = await startPebble({ httpPort: responder.port, eab: { [EAB_KID]: EAB_KEY } });
  });
  after(async () => eab?.stop());

  it('registers with a valid binding and issues', async () => {
    const bundle = await issuer({ id: 'eab-ok', eab: { kid: EAB_KID, hmacKey: EAB_KEY } }, eab).issue({ names: [fresh()] });
    await assertChainVerifies(bundle.certPem, eab.rootPem);
    assert.ok(await store.getBlob(acmeKeys('eab-ok').account));
  });

  for (const [label, creds, detail] of [
    ['no binding', undefined, /requires external account binding/],
    ['an unknown kid', { kid: 'kid-9', hmacKey: EAB_KEY }, /kid-9.*not known/],
    ['a wrong MAC key', { kid: EAB_KID, hmacKey: Buffer.alloc(48, 7).toString('base64url') }, /verification error/],
  ] as const) {
    it(`refuses ${label} with CERTD_E_ACME_EAB and stores no account`, async () => {
      const id = `eab-${seq++}`;
      await assert.rejects(issuer({ id, eab: creds }, eab).issue({ names: [fresh()] }), (err: Error) => {
        assert.equal(errorCode(err), 'CERTD_E_ACME_EAB');
        assert.match(err.message, detail);
        return true;
      });
      assert.equal(await store.getBlob(acmeKeys(id).account), undefined);
    });
  }
});

describe('badNonce', () => {
  it('was retried during this file (Pebble rejects 5 % of nonces) and never surfaced', () => {
    // ~200 signed requests above: the chance that none was rejected is below 1e-4.
    assert.ok(events.some((e) => e.event === 'bad-nonce-retry'));
  });
});
