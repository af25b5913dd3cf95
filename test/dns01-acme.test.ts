import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { configFromObject } from '../src/config/load.js';
import { createIssuers } from '../src/daemon/issuers.js';
import type { AcmeIssuer } from '../src/issuers/acme/issuer.js';
import { FsStore } from '../src/store/fs/fs-store.js';
import { startDns01World, type Dns01World } from './helpers/dns01-world.js';
import { startPebble, type TestPebble } from './helpers/pebble.js';
import { freePort } from './helpers/ports.js';

/*
 * DNS-01 end to end: Pebble validates over DNS through a private recursive bind9 that forwards
 * each zone to its own private bind9 (test/helpers/dns01-world.ts); certd writes the records with
 * RFC 2136 (each server its own TSIG key) or through an exec hook running nsupdate.
 */

let world: Dns01World;
let pebble: TestPebble;
let store: FsStore;
let issuers: Map<string, AcmeIssuer>;
const warnings: string[] = [];

const originalWarn = process.emitWarning;

before(async () => {
  world = await startDns01World();
  pebble = await startPebble({ httpPort: await freePort(), dnsServer: world.caResolver.server, authzReusePercent: 0 });
  // One order at a time here, so a reused authorization cannot skip a path under test.
  const caBundle = join(world.dir, 'pebble-tls.pem');
  await writeFile(caBundle, pebble.tlsCaPem);
  const { delegated, other, secondary, delegatedKey, otherKey } = world;
  const fast = { timeout: '30s', interval: '200ms' };
  const rfc2136 = (server: string, zone: string, tsig: typeof delegatedKey, servers = [server]) => ({
    zones: [zone],
    rfc2136: { server, zone, tsig },
    propagation: { servers, ...fast },
  });
  const solvers = [
    rfc2136(delegated.server, 'acme.delegated.test', delegatedKey),
    rfc2136(delegated.server, 'one.test', delegatedKey),
    rfc2136(other.server, 'two.test', otherKey),
    rfc2136(other.server, 'slow.test', otherKey, [other.server, secondary.server]),
    { zones: ['hook.test'], exec: { command: [await world.nsupdateHook()], timeout: '30s' }, propagation: { servers: [other.server], ...fast } },
  ];
  const acme = (dns: unknown) => ({ type: 'acme', directory: pebble.directoryUrl, caBundle, challenge: 'dns-01', dns });
  const withSolver = (i: number, change: Record<string, unknown>) => solvers.map((s, j) => (j === i ? { ...s, ...change } : s));
  const config = configFromObject(
    {
      dataDir: join(world.dir, 'data'),
      haproxy: { certDir: join(world.dir, 'certs') },
      issuers: {
        dns: acme({ resolver: world.resolver.server, solvers }),
        fresh: acme({ resolver: world.resolver.server, solvers }),
        hookfail: acme({
          resolver: world.resolver.server,
          solvers: withSolver(4, { exec: { command: [await world.hook('fail-hook', 'echo "provider said: bad credentials for $2 (token $DNS_API_TOKEN)" >&2\nexit 1')] } }),
        }),
        hookhang: acme({
          resolver: world.resolver.server,
          solvers: withSolver(4, {
            exec: { command: [await world.hook('hang-hook', `echo $$ > "${world.dir}/hang.pids"\nsleep 300 &\necho $! >> "${world.dir}/hang.pids"\nwait`)], timeout: '2s' },
          }),
        }),
        slowfail: acme({ resolver: world.resolver.server, solvers: withSolver(3, { propagation: { servers: [other.server, secondary.server], timeout: '2s', interval: '200ms' } }) }),
      },
    },
    world.dir,
  );
  store = await FsStore.open(config.dataDir);
  process.emitWarning = ((w: string | Error) => void warnings.push(String(w))) as typeof process.emitWarning;
  issuers = (await createIssuers(config, store)) as Map<string, AcmeIssuer>;
});

after(async () => {
  process.emitWarning = originalWarn;
  for (const issuer of issuers?.values() ?? []) issuer.close();
  await store?.close();
  await pebble?.stop();
  await world?.stop();
});

/** Whether `pid` runs; a zombie waiting for this container's init to reap it does not. */
async function running(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function sans(certPem: string): string[] {
  return new X509Certificate(certPem).subjectAltName!.split(', ').map((s) => s.replace(/^DNS:/, '')).sort();
}

describe('DNS-01 with zones → solvers, CNAME delegation, hooks and a propagation check (real bind9, real Pebble)', () => {
  test('a wildcard through a CNAME into a second server\'s zone: the customer server holds no key of ours; the TXT is gone afterwards', async () => {
    assert.doesNotMatch(world.customer.conf, /^key /m, 'the customer zone server knows no TSIG key');
    const bundle = await issuers.get('dns')!.issue({ names: ['*.customer.test', 'customer.test'] });
    assert.deepEqual(sans(bundle.certPem), ['*.customer.test', 'customer.test']);
    assert.deepEqual(await world.txt(world.delegated, 'customer.acme.delegated.test'), [], 'TXT removed at the CNAME target');
    assert.deepEqual(await store.listDnsRecords(), [], 'nothing left to remove in the store');
  });

  test('two zones on two servers in one order', async () => {
    const bundle = await issuers.get('dns')!.issue({ names: ['x.one.test', 'y.two.test'] });
    assert.deepEqual(sans(bundle.certPem), ['x.one.test', 'y.two.test']);
    assert.deepEqual(await world.txt(world.delegated, '_acme-challenge.x.one.test'), []);
    assert.deepEqual(await world.txt(world.other, '_acme-challenge.y.two.test'), []);
  });

  test('an exec hook running nsupdate gets a wildcard certificate and cleans up', async () => {
    const bundle = await issuers.get('dns')!.issue({ names: ['*.hook.test', 'hook.test'] });
    assert.deepEqual(sans(bundle.certPem), ['*.hook.test', 'hook.test']);
    assert.deepEqual(await world.txt(world.other, '_acme-challenge.hook.test'), []);
  });

  test('a hook that exits 1: the order fails with its stderr (secrets masked)', async () => {
    process.env.DNS_API_TOKEN = 'tok-5ecr3t-value';
    try {
      await assert.rejects(issuers.get('hookfail')!.issue({ names: ['fail.hook.test'] }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'CERTD_E_DNS_HOOK');
        assert.match(err.message, /exited with 1: provider said: bad credentials for _acme-challenge\.fail\.hook\.test\./);
        assert.doesNotMatch(err.message, /tok-5ecr3t-value/);
        assert.match(err.message, /\[DNS_API_TOKEN\]/);
        return true;
      });
    } finally {
      delete process.env.DNS_API_TOKEN;
    }
    // Its cleanup fails the same way: the record stays in the store, retried after each order.
    assert.deepEqual((await store.listDnsRecords()).map((r) => [r.issuer, r.fqdn]), [['hookfail', '_acme-challenge.fail.hook.test']]);
    assert.ok(warnings.some((w) => /_acme-challenge\.fail\.hook\.test \(issuer "hookfail"\) not removed yet/.test(w)), warnings.join('\n'));
  });

  test('a hook that hangs fails at its timeout, and nothing it started keeps running', async () => {
    const started = Date.now();
    await assert.rejects(issuers.get('hookhang')!.issue({ names: ['hang.hook.test'] }), {
      code: 'CERTD_E_DNS_HOOK',
      message: /did not finish within 2000 ms and was killed/,
    });
    assert.ok(Date.now() - started < 20_000, 'failed near its timeout');
    const pids = (await readFile(join(world.dir, 'hang.pids'), 'utf8')).trim().split('\n').map(Number);
    assert.equal(pids.length, 2);
    for (const pid of pids) assert.equal(await running(pid), false, `hook process ${pid} still running`);
  });

  test('a late secondary (NOTIFY off): the issuer waits until it serves the record, then Pebble validates', async () => {
    const started = Date.now();
    const issuing = issuers.get('dns')!.issue({ names: ['late.slow.test'] });
    // The transfer happens only when the secondary is told; until then the check must hold the order.
    await new Promise((r) => setTimeout(r, 2_500));
    await world.secondary.notify('slow.test');
    const bundle = await issuing;
    assert.deepEqual(sans(bundle.certPem), ['late.slow.test']);
    assert.ok(Date.now() - started >= 2_500);
  });

  test('a secondary that never catches up: the order fails naming the lagging server', async () => {
    await assert.rejects(issuers.get('slowfail')!.issue({ names: ['never.slow.test'] }), (err: Error & { code?: string; lagging?: string[] }) => {
      assert.equal(err.code, 'CERTD_E_DNS_PROPAGATION');
      assert.deepEqual(err.lagging, [world.secondary.server]);
      assert.ok(err.message.includes(world.secondary.server), err.message);
      return true;
    });
    assert.deepEqual(await world.txt(world.other, '_acme-challenge.never.slow.test'), [], 'cleaned up on the primary');
  });

  test('a cancelled order: the record written so far is removed, none left in the store', async () => {
    const ac = new AbortController();
    const cancelled = new Error('cancelled by the test');
    // The secondary is not told: the propagation check holds the order until the abort.
    setTimeout(() => ac.abort(cancelled), 1_500);
    await assert.rejects(issuers.get('dns')!.issue({ names: ['cancel.slow.test'], signal: ac.signal }), cancelled);
    assert.deepEqual(await world.txt(world.other, '_acme-challenge.cancel.slow.test'), []);
    assert.deepEqual((await store.listDnsRecords()).filter((r) => r.issuer === 'dns'), []);
  });

  test('a CNAME loop: a clear error before any order (the fresh issuer never even registered an account)', async () => {
    await assert.rejects(issuers.get('fresh')!.issue({ names: ['loop.customer.test'] }), {
      code: 'CERTD_E_DNS_CNAME',
      message: /loop \(_acme-challenge\.loop\.customer\.test → _acme-challenge\.loop2\.customer\.test → _acme-challenge\.loop\.customer\.test\)/,
    });
    assert.equal(await store.getBlob('acme/fresh/account.json'), undefined, 'no account, so no order at the CA');
    assert.deepEqual((await store.listDnsRecords()).filter((r) => r.issuer === 'fresh'), []);
  });
});
