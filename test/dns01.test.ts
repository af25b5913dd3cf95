import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { DnsTsigError, DnsUpdateRefusedError } from '../src/challenges/dns-01/errors.js';
import { Rfc2136Client, type Rfc2136Options } from '../src/challenges/dns-01/rfc2136.js';
import { Rfc2136Dns01Solver } from '../src/challenges/dns-01/solver.js';
import { startBind9, type TestBind9, type TestTsigKey } from './helpers/bind9.js';
import { freePort } from './helpers/ports.js';

/*
 * RFC 2136 + TSIG against a real, private bind9 `named` (test/helpers/bind9.ts). Each test uses
 * its own record names, so they do not see each other's records.
 */

let bind: TestBind9;
before(async () => {
  bind = await startBind9();
});
after(async () => {
  await bind?.stop();
});

function client(opts: { key?: TestTsigKey; zone?: string; server?: string } & Partial<Rfc2136Options> = {}): Rfc2136Client {
  return new Rfc2136Client({
    timeoutMs: 500,
    attempts: 2,
    ...opts,
    server: opts.server ?? bind.server,
    zone: opts.zone ?? bind.zone,
    tsig: opts.key ?? bind.keys.sha256,
  });
}

/**
 * dig's answer lines for TXT at `name` (`+short` or `+noall +answer`). dig prints ";; communications
 * error …" or ";; no servers could be reached" when an exchange failed (a loaded machine: seen as a timeout, and as three quick failures
 * with no answer at all); such a run is asked again, up to 5 times, so the second opinion is dig's
 * view of the zone, not of the machine's load.
 */
async function digAnswers(name: string, format: string[]): Promise<string[]> {
  for (let attempt = 1; ; attempt++) {
    const { stdout } = await promisify(execFile)('dig', ['@127.0.0.1', '-p', String(bind.port), ...format, '+norec', 'TXT', name]);
    const answers = stdout.split('\n').filter((line) => line !== '' && !line.startsWith(';'));
    // Both formats print no comment at all when the exchange went well.
    if (!/^;;/m.test(stdout) || attempt === 5) return answers;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** What `dig` (BIND's own client) sees at the server, as a second opinion on our queries. */
async function dig(name: string): Promise<string[]> {
  return (await digAnswers(name, ['+short'])).map((line) => [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]).join('')).sort();
}

/** The TTLs dig sees for the TXT records at `name`. */
async function digTtls(name: string): Promise<number[]> {
  return (await digAnswers(name, ['+noall', '+answer'])).map((line) => Number(line.split(/\s+/)[1]));
}

async function served(name: string): Promise<string[]> {
  return (await client().queryTxt(name)).sort();
}

describe('RFC 2136 updates with TSIG against bind9', () => {
  for (const which of ['sha256', 'sha512'] as const) {
    it(`adds a TXT record signed with hmac-${which}, then deletes it`, async () => {
      const name = `_acme-challenge.${which}.${bind.zone}`;
      const c = client({ key: bind.keys[which] });
      await c.addTxt(name, `value-${which}`);
      assert.deepEqual(await served(name), [`value-${which}`]);
      assert.deepEqual(await dig(name), [`value-${which}`]);
      assert.deepEqual(await digTtls(name), [60]);
      await c.deleteTxt(name, `value-${which}`);
      assert.deepEqual(await served(name), []);
      assert.deepEqual(await dig(name), []);
    });
  }

  it('keeps both values at one name (example.test and *.example.test) and deletes only the one asked', async () => {
    const name = `_acme-challenge.two.${bind.zone}`;
    const c = client();
    await c.addTxt(name, 'for-apex');
    await c.addTxt(name, 'for-wildcard');
    assert.deepEqual(await served(name), ['for-apex', 'for-wildcard']);
    await c.deleteTxt(name, 'for-apex');
    assert.deepEqual(await served(name), ['for-wildcard']);
    assert.deepEqual(await dig(name), ['for-wildcard']);
    await c.deleteTxt(name, 'for-wildcard');
    assert.deepEqual(await served(name), []);
  });

  it('goes over TCP for a message too large for UDP, and after a truncated UDP reply', async () => {
    const name = `_acme-challenge.large.${bind.zone}`;
    const big = 'x'.repeat(600);
    const c = client();
    await c.addTxt(name, big);
    // The reply to this query does not fit 512 bytes: named sets TC and we ask again over TCP.
    assert.deepEqual(await c.queryTxt(name), [big]);
    await c.deleteTxt(name, big);
    assert.deepEqual(await served(name), []);
  });

  it('says CERTD_E_DNS_TSIG with what to check on a wrong secret (BADSIG), and changes nothing', async () => {
    const name = `_acme-challenge.badsig.${bind.zone}`;
    const key = { ...bind.keys.sha256, secret: Buffer.alloc(32, 9).toString('base64') };
    await assert.rejects(client({ key }).addTxt(name, 'nope'), (err: unknown) => {
      assert.ok(err instanceof DnsTsigError);
      assert.equal(err.code, 'CERTD_E_DNS_TSIG');
      assert.equal(err.tsigError, 'BADSIG');
      assert.match(err.message, /tsig\.secret/);
      return true;
    });
    assert.deepEqual(await served(name), []);
  });

  it('says CERTD_E_DNS_TSIG on a key name the server does not know (BADKEY), and changes nothing', async () => {
    const name = `_acme-challenge.badkey.${bind.zone}`;
    const key = { ...bind.keys.sha256, name: 'not-a-key' };
    await assert.rejects(client({ key }).addTxt(name, 'nope'), { code: 'CERTD_E_DNS_TSIG', tsigError: 'BADKEY', message: /tsig\.name/ });
    // The right name with the wrong algorithm is another key to BIND.
    await assert.rejects(client({ key: { ...bind.keys.sha256, algorithm: 'hmac-sha512' } }).addTxt(name, 'nope'), {
      code: 'CERTD_E_DNS_TSIG',
      tsigError: 'BADKEY',
    });
    assert.deepEqual(await served(name), []);
  });

  it('says CERTD_E_DNS_UPDATE_REFUSED when the key may not update (REFUSED), and changes nothing', async () => {
    const name = `_acme-challenge.nogrant.${bind.zone}`;
    await assert.rejects(client({ key: bind.keys.noGrant }).addTxt(name, 'nope'), (err: unknown) => {
      assert.ok(err instanceof DnsUpdateRefusedError);
      assert.equal(err.code, 'CERTD_E_DNS_UPDATE_REFUSED');
      assert.equal(err.rcode, 'REFUSED');
      assert.match(err.message, /update-policy/);
      return true;
    });
    assert.deepEqual(await served(name), []);
  });

  it('says CERTD_E_DNS_UPDATE_REFUSED (NOTAUTH) for a zone the server does not serve', async () => {
    const zone = 'not-served.test';
    await assert.rejects(client({ zone }).addTxt(`_acme-challenge.${zone}`, 'nope'), {
      code: 'CERTD_E_DNS_UPDATE_REFUSED',
      rcode: 'NOTAUTH',
      message: /rfc2136\.zone/,
    });
  });

  it('refuses a name outside the zone before sending anything', async () => {
    await assert.rejects(client().addTxt('_acme-challenge.example.org', 'nope'), { code: 'CERTD_E_INVALID_NAME', message: /not inside zone/ });
  });

  it('says CERTD_E_DNS_TIMEOUT within the bound when nothing listens', async () => {
    const port = await freePort();
    const started = Date.now();
    await assert.rejects(client({ server: `127.0.0.1:${port}`, timeoutMs: 200, attempts: 2 }).addTxt(`x.${bind.zone}`, 'v'), {
      code: 'CERTD_E_DNS_TIMEOUT',
    });
    const took = Date.now() - started;
    assert.ok(took >= 350 && took < 2_000, `took ${took} ms`);
  });

  it('rejects hostile names and values before anything reaches the network', async () => {
    const sink = createSocket('udp4');
    let received = 0;
    sink.on('message', () => received++);
    await new Promise<void>((resolve) => sink.bind(0, '127.0.0.1', resolve));
    try {
      const c = client({ server: `127.0.0.1:${sink.address().port}` });
      for (const name of [
        `_acme-challenge .${bind.zone}`,
        `_acme-challenge;rm.${bind.zone}`,
        `_acme-challenge\n.${bind.zone}`,
        `_acme-challenge..${bind.zone}`,
        `_acme-challenge.${bind.zone}\nupdate delete ${bind.zone}`,
        '',
      ]) {
        await assert.rejects(c.addTxt(name, 'v'), { code: 'CERTD_E_INVALID_NAME' }, JSON.stringify(name));
        await assert.rejects(c.deleteTxt(name, 'v'), { code: 'CERTD_E_INVALID_NAME' }, JSON.stringify(name));
      }
      for (const value of ['', 'line\nbreak', 'ü', 'x'.repeat(1025)]) {
        await assert.rejects(c.addTxt(`ok.${bind.zone}`, value), { code: 'CERTD_E_DNS_UPDATE' }, JSON.stringify(value));
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(received, 0);
    } finally {
      sink.close();
    }
  });

  it('checks options when the client is built', () => {
    assert.throws(() => client({ server: 'not a server' }), { code: 'CERTD_E_CONFIG', message: /host:port/ });
    assert.throws(() => client({ zone: 'bad zone' }), { code: 'CERTD_E_CONFIG' });
    assert.throws(() => client({ key: { ...bind.keys.sha256, secret: '' } }), { code: 'CERTD_E_CONFIG', message: /base64/ });
  });
});

describe('waitForTxt', () => {
  it('returns once the value is served, and times out (CERTD_E_DNS_TIMEOUT) when it never is', async () => {
    const name = `_acme-challenge.wait.${bind.zone}`;
    const c = client();
    const waiting = c.waitForTxt(name, 'late', { timeoutMs: 5_000, intervalMs: 50 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await c.addTxt(name, 'late');
    await waiting;
    const started = Date.now();
    await assert.rejects(c.waitForTxt(name, 'never', { timeoutMs: 300, intervalMs: 50 }), {
      code: 'CERTD_E_DNS_TIMEOUT',
      message: /"late"/,
    });
    assert.ok(Date.now() - started < 2_000);
    await c.deleteTxt(name, 'late');
  });

  it('stops with the signal reason when aborted', async () => {
    const reason = new Error('shutting down');
    const ac = new AbortController();
    setTimeout(() => ac.abort(reason), 100);
    await assert.rejects(client().waitForTxt(`_acme-challenge.abort.${bind.zone}`, 'v', { timeoutMs: 5_000, intervalMs: 50, signal: ac.signal }), reason);
  });
});

describe('Rfc2136Dns01Solver', () => {
  function solver(zone = bind.zone, key = bind.keys.sha256) {
    return new Rfc2136Dns01Solver({ server: bind.server, zone, tsig: key, timeoutMs: 500, attempts: 2, propagationTimeoutMs: 5_000, pollIntervalMs: 50 });
  }

  it('presents a challenge (served when present resolves) and cleans it up, twice without error', async () => {
    const name = `_acme-challenge.solver.${bind.zone}`;
    const s = solver();
    await s.present(name, 'token-a');
    await s.present(`${name}.`, 'token-b');
    assert.deepEqual(await dig(name), ['token-a', 'token-b']);
    await s.cleanup(name, 'token-a');
    await s.cleanup(name, 'token-a');
    assert.deepEqual(await dig(name), ['token-b']);
    await s.cleanup(name, 'token-b');
    assert.deepEqual(await served(name), []);
  });

  it('works with a delegated _acme-challenge zone (the record at its apex)', async () => {
    const name = bind.delegatedZone;
    const s = solver(bind.delegatedZone);
    await s.present(name, 'delegated');
    assert.deepEqual(await dig(name), ['delegated']);
    await s.cleanup(name, 'delegated');
    assert.deepEqual(await dig(name), []);
  });

  it('passes the abort signal through present', async () => {
    const ac = new AbortController();
    ac.abort(new Error('cancelled'));
    await assert.rejects(solver().present(`_acme-challenge.cancel.${bind.zone}`, 'v', ac.signal), /cancelled/);
    assert.deepEqual(await served(`_acme-challenge.cancel.${bind.zone}`), []);
  });
});
