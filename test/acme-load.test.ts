import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseBundle } from '../src/core/bundle.js';
import { AcmeIssuer } from '../src/issuers/acme/index.js';
import { FsStore } from '../src/store/fs/fs-store.js';
import { startHttp01Responder, startPebble, type Http01Responder, type TestPebble } from './helpers/pebble.js';
import { tempDir } from './helpers/temp-dir.js';

/*
 * Wall times against a private Pebble (PEBBLE_VA_NOSLEEP, real HTTP-01 validation, 5 % of nonces
 * rejected), reported as test diagnostics: one single-name issuance (median of 11 after a warm-up
 * that registers the account) and 50 concurrent issuances on one account.
 */

let dir: string;
let responder: Http01Responder;
let pebble: TestPebble;
let store: FsStore;
let acme: AcmeIssuer;
let seq = 0;
const name = () => `load-${process.pid}-${seq++}.example.com`;

before(async () => {
  dir = tempDir('certd-acme-load-');
  responder = await startHttp01Responder();
  pebble = await startPebble({ httpPort: responder.port });
  store = await FsStore.open(join(dir, 'data'));
  acme = new AcmeIssuer({
    id: 'load',
    directory: pebble.directoryUrl,
    caBundle: pebble.tlsCaPem,
    challenge: 'http-01',
    solvers: { 'http-01': responder.solver },
    store,
    // Pebble has left one order-plz unanswered under load here; the client sends it again after this.
    requestTimeoutMs: 10_000,
  });
  await acme.issue({ names: [name()] });
});

after(async () => {
  acme?.close();
  await pebble?.stop();
  await responder?.stop();
  await store?.close();
});

describe('ACME issuance timing (Pebble)', () => {
  it('one single-name issuance: median of 11', async (t) => {
    const times: number[] = [];
    for (let i = 0; i < 11; i++) {
      const started = performance.now();
      await acme.issue({ names: [name()] });
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    t.diagnostic(`single issuance: median ${times[5]!.toFixed(0)} ms (min ${times[0]!.toFixed(0)}, max ${times[10]!.toFixed(0)})`);
  });

  it('50 concurrent issuances all succeed', async (t) => {
    const names = Array.from({ length: 50 }, name);
    const started = performance.now();
    // Pebble 2.4 has stalled one order-plz under this load, for longer than the client's resend
    // (seen 3 times in ~15 full runs here, once more with the retry stalling too; cause not found
    // in Pebble). Such an issuance is tried again, at most twice, as the daemon's retry would; any
    // other failure, or more than two names needing it, fails the test.
    const retried: string[] = [];
    const issue = async (n: string): Promise<Awaited<ReturnType<typeof acme.issue>>> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await acme.issue({ names: [n] });
        } catch (err) {
          if ((err as { code?: string }).code !== 'CERTD_E_ACME_UNREACHABLE' || attempt > 2) throw err;
          retried.push(`${n}: ${(err as Error).message}`);
        }
      }
    };
    const bundles = await Promise.all(names.map(issue));
    const wall = performance.now() - started;
    bundles.forEach((b, i) => assert.deepEqual(parseBundle(b.certPem, b.keyPem).names, [names[i]]));
    assert.equal(responder.tokens.size, 0);
    assert.ok(new Set(retried.map((r) => r.slice(0, r.indexOf(':')))).size <= 2, `issuances that needed a retry: ${retried.join('; ')}`);
    t.diagnostic(`50 concurrent issuances: ${wall.toFixed(0)} ms wall; retried after a stalled request: ${retried.length} (${retried.join('; ') || 'none'})`);
  });
});
