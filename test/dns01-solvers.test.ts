import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { followCnames } from '../src/challenges/dns-01/delegation.js';
import { dns01FromConfig } from '../src/challenges/dns-01/from-config.js';
import { DnsLookup } from '../src/challenges/dns-01/lookup.js';
import { authoritativeServers } from '../src/challenges/dns-01/propagation.js';
import { ConfigValidationError, configFromObject, parseConfigText, type ConfigProblem } from '../src/config/load.js';
import type { AcmeDnsSpec } from '../src/config/schema.js';
import { FsStore } from '../src/store/fs/fs-store.js';
import { startDns01World, type Dns01World } from './helpers/dns01-world.js';

/* The DNS-01 solvers without a CA: config, routing, sweeping, NS discovery, the hook's protocol. */

function dnsSpec(dns: unknown, dir = '/tmp'): AcmeDnsSpec {
  const config = configFromObject(
    { haproxy: { certDir: join(dir, 'certs') }, issuers: { le: { type: 'acme', directory: 'https://ca.test/dir', challenge: 'dns-01', dns } } },
    dir,
  );
  const issuer = config.issuers.le!;
  assert.equal(issuer.type, 'acme');
  return (issuer as { dns: AcmeDnsSpec }).dns;
}

function problems(text: string): readonly ConfigProblem[] {
  try {
    parseConfigText(text, { file: 'certd.yaml', baseDir: '/tmp' });
  } catch (err) {
    if (err instanceof ConfigValidationError) return err.problems;
    throw err;
  }
  assert.fail('the config was accepted');
}

describe('dns config', () => {
  test('the issue\'s contract parses; the old single-solver form still does', () => {
    const tsig = { name: 'k', algorithm: 'hmac-sha256', secret: 'c2VjcmV0' };
    const dns = dnsSpec({
      resolver: '10.0.0.53',
      solvers: [
        { zones: ['delegated.example.net'], rfc2136: { server: '10.0.0.53:53', zone: 'delegated.example.net', tsig }, propagation: { servers: ['10.0.0.53:53'], timeout: '2m' } },
        { zones: ['example.org'], exec: { command: ['/usr/local/bin/dns-hook'], timeout: '60s' }, propagation: false },
      ],
    });
    assert.equal(dns.resolver, '10.0.0.53:53');
    assert.deepEqual(dns.solvers![0]!.propagation, { enabled: true, servers: ['10.0.0.53:53'], timeout: 120_000, interval: 2_000 });
    assert.deepEqual(dns.solvers![1]!.propagation.enabled, false);
    assert.deepEqual(dns.solvers![1]!.exec, { command: ['/usr/local/bin/dns-hook'], timeout: 60_000 });
    assert.equal(dnsSpec({ rfc2136: { server: '10.0.0.53', zone: 'example.com.', tsig } }).rfc2136!.zone, 'example.com');
  });

  test('mistakes are reported at their line with the key path', () => {
    const head = 'haproxy: { certDir: ./certs }\nissuers:\n  le:\n    type: acme\n    directory: https://ca.test/dir\n    challenge: dns-01\n    dns:\n      solvers:\n';
    const tsig = 'tsig: { name: k, algorithm: hmac-sha256, secret: c2VjcmV0 }';
    const shapes = problems(
      `${head}        - zones: [example.com]
          exec: { command: [/bin/hook] }
          rfc2136: { server: 10.0.0.53, zone: example.com, ${tsig} }
        - zones: [example.net]
          exec: { command: [/bin/hook] }
          propagation: { timeout: soon }
`,
    ).map((p) => `${p.line} ${p.path}: ${p.message}`);
    assert.ok(shapes.some((p) => /^9 issuers\.le\.dns\.solvers\[0\]: a solver has exactly one of rfc2136/.test(p)), shapes.join('\n'));
    assert.ok(shapes.some((p) => /^14 issuers\.le\.dns\.solvers\[1\]\.propagation\.timeout: expected a duration/.test(p)), shapes.join('\n'));
    const zones = problems(
      `${head}        - zones: [example.com]
          exec: { command: [/bin/hook] }
        - zones: [other.net, example.com]
          rfc2136: { server: 10.0.0.53, zone: elsewhere.net, ${tsig} }
`,
    ).map((p) => `${p.line} ${p.path}: ${p.message}`);
    assert.ok(zones.some((p) => /^11 issuers\.le\.dns\.solvers\[1\]\.zones\[0\]: other\.net is not inside rfc2136\.zone elsewhere\.net/.test(p)), zones.join('\n'));
    assert.ok(zones.some((p) => /^11 issuers\.le\.dns\.solvers\[1\]\.zones\[1\]: zone example\.com is also in solvers\[0\]/.test(p)), zones.join('\n'));
  });

  test('dns needs one form, not both and not neither', () => {
    assert.throws(() => dnsSpec({}), /dns needs solvers/);
    assert.throws(() => dnsSpec({ resolver: '10.0.0.53' }), /dns needs solvers/);
    const rfc2136 = { server: '10.0.0.53', zone: 'example.com', tsig: { name: 'k', algorithm: 'hmac-sha256', secret: 'c2VjcmV0' } };
    assert.throws(() => dnsSpec({ resolver: '10.0.0.53', rfc2136 }), /resolver goes with solvers/);
  });
});

describe('routing, sweeping and lookups against real bind9', () => {
  let world: Dns01World;
  let dir: string;
  before(async () => {
    world = await startDns01World();
    dir = await mkdtemp(join(tmpdir(), 'certd-dns01-store-'));
  });
  after(async () => {
    await world?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const spec = () =>
    dnsSpec({
      resolver: world.resolver.server,
      solvers: [
        { zones: ['acme.delegated.test'], rfc2136: { server: world.delegated.server, zone: 'acme.delegated.test', tsig: world.delegatedKey }, propagation: { servers: [world.delegated.server] } },
        { zones: ['two.test'], rfc2136: { server: world.other.server, zone: 'two.test', tsig: world.otherKey }, propagation: false },
      ],
    });

  test('a record left by a crash is in the store and removed by the next process\'s sweep', async () => {
    const store = await FsStore.open(join(dir, 'crash'));
    const first = dns01FromConfig('le', spec(), store);
    await first.present('_acme-challenge.customer.test', 'left-by-a-crash');
    assert.deepEqual(await world.txt(world.delegated, 'customer.acme.delegated.test'), ['left-by-a-crash'], 'written at the CNAME target');
    // The process dies here: no cleanup. A new one (same store) sweeps at start.
    const [record] = await store.listDnsRecords();
    assert.equal(record?.fqdn, 'customer.acme.delegated.test');
    assert.equal(record?.zone, 'acme.delegated.test');
    const second = dns01FromConfig('le', spec(), await FsStore.open(join(dir, 'crash')));
    await second.sweep();
    assert.deepEqual(await world.txt(world.delegated, 'customer.acme.delegated.test'), []);
    assert.deepEqual(await store.listDnsRecords(), []);
  });

  test('a sweep leaves the records of orders still in flight alone; cleanup removes them', async () => {
    const store = await FsStore.open(join(dir, 'live'));
    const solver = dns01FromConfig('le', spec(), store);
    await solver.present('_acme-challenge.a.two.test', 'in-flight');
    await solver.sweep();
    assert.deepEqual(await world.txt(world.other, '_acme-challenge.a.two.test'), ['in-flight']);
    await solver.cleanup('_acme-challenge.a.two.test', 'in-flight');
    assert.deepEqual(await world.txt(world.other, '_acme-challenge.a.two.test'), []);
    assert.deepEqual(await store.listDnsRecords(), []);
  });

  test('a name no solver covers, and a CNAME loop, are refused by prepare', async () => {
    const solver = dns01FromConfig('le', spec(), await FsStore.open(join(dir, 'prepare')));
    await assert.rejects(solver.prepare(['_acme-challenge.nowhere.test']), { code: 'CERTD_E_DNS_NO_SOLVER', message: /configured zones: acme\.delegated\.test, two\.test/ });
    await assert.rejects(solver.prepare(['_acme-challenge.loop.customer.test']), { code: 'CERTD_E_DNS_CNAME', message: /loop/ });
  });

  test('a chain longer than the bound is refused with the chain', async () => {
    const lookup = new DnsLookup(world.resolver.server);
    assert.deepEqual(await followCnames('_acme-challenge.customer.test', lookup), ['_acme-challenge.customer.test', 'customer.acme.delegated.test']);
    await assert.rejects(followCnames('_acme-challenge.customer.test', lookup, undefined, 0), { code: 'CERTD_E_DNS_CNAME', message: /longer than 0 hops/ });
  });

  test('authoritative servers come from the zone\'s NS through the resolver', async () => {
    const servers = await authoritativeServers('two.test', new DnsLookup(world.resolver.server), world.other.port);
    assert.deepEqual(servers, [{ host: '127.0.0.1', port: world.other.port }]);
    await assert.rejects(authoritativeServers('nx.two.test', new DnsLookup(world.resolver.server)), { code: 'CERTD_E_DNS_PROPAGATION', message: /propagation\.servers/ });
  });

  test('the exec hook gets lego\'s arguments and the CERTD_DNS_* variables', async () => {
    const out = join(world.dir, 'hook-args');
    const hook = await world.hook('record-args', `echo "$* | $CERTD_DNS_ACTION $CERTD_DNS_FQDN $CERTD_DNS_VALUE $CERTD_DNS_ZONE" >> "${out}"`);
    const solver = dns01FromConfig(
      'le',
      dnsSpec({ resolver: world.resolver.server, solvers: [{ zones: ['hook.test', 'sub.hook.test'], exec: { command: [hook, '--flag'] }, propagation: false }] }),
      await FsStore.open(join(dir, 'exec')),
    );
    await solver.present('_acme-challenge.www.sub.hook.test', 'v1');
    await solver.cleanup('_acme-challenge.www.sub.hook.test', 'v1');
    assert.deepEqual((await readFile(out, 'utf8')).trim().split('\n'), [
      '--flag present _acme-challenge.www.sub.hook.test. v1 | present _acme-challenge.www.sub.hook.test. v1 sub.hook.test',
      '--flag cleanup _acme-challenge.www.sub.hook.test. v1 | cleanup _acme-challenge.www.sub.hook.test. v1 sub.hook.test',
    ]);
  });

  test('contrib/dns-hooks/acme-sh-dnsapi.sh turns the hook protocol into dns_<provider>_add/_rm calls', async () => {
    // A stand-in for an acme.sh install: what the wrapper relies on (sourcing defines functions,
    // _initpath exists) and a dnsapi script that records its calls.
    const home = join(world.dir, 'acmesh');
    const out = join(home, 'calls');
    await mkdir(join(home, 'dnsapi'), { recursive: true });
    await writeFile(join(home, 'acme.sh'), '_initpath() { :; }\n_info() { echo "$@" >&2; }\n');
    await writeFile(
      join(home, 'dnsapi', 'dns_certdtest.sh'),
      `dns_certdtest_add() { _info "adding"; echo "add $1 $2" >> "${out}"; }\ndns_certdtest_rm() { echo "rm $1 $2" >> "${out}"; }\n`,
    );
    const wrapper = fileURLToPath(new URL('../contrib/dns-hooks/acme-sh-dnsapi.sh', import.meta.url));
    const saved = process.env.ACMESH_HOME;
    process.env.ACMESH_HOME = home;
    try {
      const solver = dns01FromConfig(
        'le',
        dnsSpec({ resolver: world.resolver.server, solvers: [{ zones: ['hook.test'], exec: { command: [wrapper, 'dns_certdtest'] }, propagation: false }] }),
        await FsStore.open(join(dir, 'acmesh')),
      );
      await solver.present('_acme-challenge.w.hook.test', 'v2');
      await solver.cleanup('_acme-challenge.w.hook.test', 'v2');
    } finally {
      if (saved === undefined) delete process.env.ACMESH_HOME;
      else process.env.ACMESH_HOME = saved;
    }
    assert.deepEqual((await readFile(out, 'utf8')).trim().split('\n'), ['add _acme-challenge.w.hook.test v2', 'rm _acme-challenge.w.hook.test v2']);
  });
});
