import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selfSigned } from './helpers/certs.js';
import { runCli } from './helpers/cli.js';
import { handshake, startStack, type Stack } from './helpers/stack.js';
import { tempDir } from './helpers/temp-dir.js';

describe('CLI without a daemon: acts on the store, clear errors, exit codes', () => {
  let dir: string;
  const cli = (...args: string[]) => runCli(['--config', join(dir, 'certd.yaml'), ...args]);

  before(async () => {
    dir = tempDir('certd-cli-');
    // A port nobody listens on: the CLI must fall back to the store.
    await writeFile(join(dir, 'certd.yaml'), 'dataDir: ./data\nhaproxy: { certDir: ./certs }\napi: { listen: "127.0.0.1:1" }\n');
  });

  test('an unknown config key is a usage error naming file, line and key', async () => {
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'dataDir: ./data\nhaproxy:\n  certDir: ./certs\n  crtlist: ./x\n');
    const r = await runCli(['--config', bad, 'list']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bad\.yaml:4:3 haproxy\.crtlist/);
    assert.match(r.stderr, /crtList/);
  });

  test('issue, list, remove on the store', async () => {
    const issued = await cli('issue', 'offline.test', 'www.offline.test');
    assert.equal(issued.code, 0, issued.stderr);
    assert.match(issued.stdout, /offline\.test, www\.offline\.test: issued, valid until/);
    assert.match(issued.stdout, /daemon not running/);
    const listed = await cli('list');
    assert.match(listed.stdout, /^NAMES\s+ISSUER\s+ORIGIN\s+NOT AFTER/m);
    assert.match(listed.stdout, /offline\.test, www\.offline\.test\s+internal\s+api\s+\S+ \S+\s+(29|30)d\s+-/);
    const json = JSON.parse((await cli('list', '--json')).stdout);
    assert.equal(json[0].id, 'offline.test');
    const removed = await cli('remove', 'offline.test');
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /^offline\.test: removed\ndaemon not running: deleted from the store only; an HAProxy that loaded it goes on serving it until `haproxy-certd run` starts/);
    assert.doesNotMatch(removed.stdout, /saved/);
    const missing = await cli('remove', 'offline.test');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /CERTD_E_NOT_FOUND/);
  });

  test('hostile names: exit 2 (input), clear error, nothing stored', async () => {
    for (const bad of ['../x', 'a b', 'x;y', 'a'.repeat(254), 'fe80::1%eth0']) {
      const r = await cli('issue', bad);
      assert.equal(r.code, 2, bad);
      assert.match(r.stderr, /CERTD_E_INVALID_NAME/);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    assert.match((await cli('issue', 'fe80::1%eth0')).stderr, /zone id/);
    const many = await cli('issue', ...Array.from({ length: 101 }, (_, i) => `n${i}.many.test`));
    assert.equal(many.code, 2);
    assert.match(many.stderr, /CERTD_E_TOO_MANY_NAMES.*at most 100|at most 100.*CERTD_E_TOO_MANY_NAMES/);
    assert.deepEqual(await readdir(join(dir, 'data', 'certs')).catch(() => []), []);
  });

  test('import: combined PEM and cert + key work; broken, mismatched and expired are refused', async () => {
    const good = await selfSigned('imported.test', { notAfter: new Date(Date.now() + 86_400_000 * 60) });
    const other = await selfSigned('other.test', { notAfter: new Date(Date.now() + 86_400_000 * 60) });
    const expired = await selfSigned('old.test', { notAfter: new Date(Date.now() - 86_400_000), notBefore: new Date(Date.now() - 86_400_000 * 30) });
    const f = (name: string, text: string) => writeFile(join(dir, name), text).then(() => join(dir, name));
    const fullchain = await f('fullchain.pem', good.certPem);
    const privkey = await f('privkey.pem', good.keyPem);
    const broken = await f('broken.pem', good.certPem.slice(0, 200));
    const wrongKey = await f('wrong-key.pem', other.keyPem);
    const old = await f('old.pem', expired.certPem + expired.keyPem);
    const in2030 = await selfSigned('later.test', { notBefore: new Date('2030-01-01T00:00:00Z'), notAfter: new Date('2031-01-01T00:00:00Z') });
    const future = await f('future.pem', in2030.pem);
    const ca = await f('ca.pem', (await selfSigned('Some Root', { isCa: true })).pem);
    const tooMany = await f('many.pem', (await selfSigned('m0.many.test', { moreNames: Array.from({ length: 500 }, (_, i) => `m${i + 1}.many.test`) })).pem);

    const r = await cli('import', '--cert', fullchain, '--key', privkey);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /imported\.test: imported/);
    for (const [args, code] of [
      [['--cert', broken, '--key', privkey], 'CERTD_E_BAD_PEM'],
      [['--cert', fullchain, '--key', wrongKey], 'CERTD_E_KEY_MISMATCH'],
      [['--cert', old], 'CERTD_E_CERT_EXPIRED'],
      [['--cert', future], 'CERTD_E_CERT_NOT_YET_VALID'],
      [['--cert', ca], 'CERTD_E_CERT_IS_CA'],
      [['--cert', tooMany], 'CERTD_E_TOO_MANY_NAMES'],
      [['--cert', join(dir, 'missing.pem')], 'CERTD_E_USAGE'],
    ] as const) {
      const bad = await cli('import', ...args);
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, new RegExp(code));
      assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
    }
    const stored = JSON.parse((await cli('list', '--json')).stdout) as { id: string }[];
    assert.deepEqual(stored.map((c) => c.id), ['imported.test']);
  });

  test('a log level that does not exist is a usage error, not a stack trace', async () => {
    const r = await runCli(['--config', join(dir, 'certd.yaml'), 'list'], { env: { CERTD_LOG_LEVEL: 'verbose' } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /CERTD_LOG_LEVEL "verbose" is not a log level/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test('--json: one JSON document on stdout, the offline note on stderr', async () => {
    const issued = await cli('issue', 'json.test', '--json');
    assert.equal(issued.code, 0, issued.stderr);
    const doc = JSON.parse(issued.stdout);
    assert.equal(doc.cert.id, 'json.test');
    assert.equal(doc.issued, true);
    assert.equal(doc.via, 'store');
    assert.match(issued.stderr, /daemon not running/);
    const renewed = JSON.parse((await cli('renew', 'json.test', '--json')).stdout);
    assert.equal(renewed.results[0].cert.id, 'json.test');
    const { ms, ...counts } = renewed.summary;
    assert.deepEqual(counts, { total: 1, issued: 1, unchanged: 0, failed: [], pending: 0 });
    assert.equal(typeof ms, 'number');
    const all = await cli('renew', '--all');
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /json\.test: issued[\s\S]*\nrenewed (\d+) of \1 certificate\(s\), 0 unchanged, 0 failed, in \d+\.\ds; 0 not yet served by every instance\n/);
    assert.match(all.stdout, /^(\d+)\/\1 \S+: issued/m, 'a plain progress line per certificate when stdout is not a terminal');
    const removed = JSON.parse((await cli('remove', 'json.test', '--json')).stdout);
    assert.deepEqual([removed.removed, removed.names, removed.comesBack], ['json.test', ['json.test'], false]);
    const status = await cli('status', '--json');
    assert.equal(status.code, 1);
    assert.deepEqual(JSON.parse(status.stdout), { daemon: { running: false, listen: '127.0.0.1:1' } });
  });

  test('list filters by glob, --expiring, --issuer, --origin; no colour when stdout is not a terminal', async () => {
    const later = await selfSigned('later.filter.test', { notAfter: new Date(Date.now() + 86_400_000 * 90) });
    await writeFile(join(dir, 'later.pem'), later.pem);
    assert.equal((await cli('import', '--cert', join(dir, 'later.pem'))).code, 0);
    assert.equal((await cli('issue', 'soon.filter.test', 'www.soon.filter.test')).code, 0);
    const ids = async (...args: string[]) => {
      const r = await cli('list', '--json', ...args);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { id: string }[]).map((c) => c.id).sort();
    };
    assert.deepEqual(await ids('*.filter.test'), ['later.filter.test', 'soon.filter.test']);
    assert.deepEqual(await ids('www.*'), ['soon.filter.test'], 'any name of the certificate matches');
    assert.deepEqual(await ids('*.filter.test', '--expiring', '60d'), ['soon.filter.test']);
    assert.deepEqual(await ids('*.filter.test', '--issuer', 'import'), ['later.filter.test']);
    assert.deepEqual(await ids('*.filter.test', '--origin', 'api'), ['soon.filter.test']);
    const text = await cli('list', '*.filter.test', '--expiring', '60d');
    assert.match(text.stdout, /^soon\.filter\.test, www\.soon\.filter\.test\s+internal/m);
    assert.doesNotMatch(text.stdout, /later\.filter\.test|\x1b/);
    assert.match((await cli('list', 'nothing.*')).stdout, /none of the \d+ certificate\(s\) match/);
    for (const bad of [['--expiring', 'two weeks'], ['--origin', 'elsewhere']]) {
      const r = await cli('list', ...bad);
      assert.equal(r.code, 2, r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
    assert.match((await cli('list', '--expiring', 'two weeks')).stderr, /--expiring "two weeks": expected a duration/);
  });

  test('remove by any name of a certificate; a configured one warns that it comes back', async () => {
    assert.equal((await cli('issue', 'primary.san.test', 'other.san.test')).code, 0);
    const bySan = await cli('remove', 'other.san.test');
    assert.equal(bySan.code, 0, bySan.stderr);
    assert.match(bySan.stdout, /^primary\.san\.test: removed/m);
    assert.doesNotMatch(bySan.stderr, /warning/);
    const configured = join(dir, 'configured.yaml');
    await writeFile(configured, 'dataDir: ./data\nhaproxy: { certDir: ./certs }\napi: { listen: "127.0.0.1:1" }\nissuers: { internal: { type: local-ca } }\ncertificates:\n  - { names: [kept.test, www.kept.test], issuer: internal }\n');
    assert.equal((await runCli(['--config', configured, 'issue', 'kept.test', 'www.kept.test'])).code, 0);
    const r = await runCli(['--config', configured, 'remove', 'www.kept.test']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: \S+configured\.yaml lists kept\.test under certificates: it is issued again when the daemon next starts/);
  });

  test('ca export prints the stored root, never a key; an unknown issuer is a usage error', async () => {
    const r = await cli('ca', 'export');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n$/);
    assert.doesNotMatch(r.stdout, /PRIVATE KEY/);
    assert.equal(JSON.parse((await cli('ca', 'export', '--json')).stdout).rootPem, r.stdout);
    const unknown = await cli('ca', 'export', '--issuer', 'nope');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /issuer "nope" is not a local-ca issuer/);
    const fresh = tempDir('certd-cli-fresh-');
    await writeFile(join(fresh, 'certd.yaml'), 'dataDir: ./data\nhaproxy: { certDir: ./certs }\napi: { listen: "127.0.0.1:1" }\n');
    const none = await runCli(['--config', join(fresh, 'certd.yaml'), 'ca', 'export']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no local CA root stored for issuer "internal" yet.*ca init.*CERTD_E_NOT_FOUND/);
  });

  test('a reader that leaves early (`| head`) ends the CLI quietly, exit 0, no stack trace', async () => {
    const r = await runCli(['completion', 'bash'], { readerGone: true });
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
  });

  test('--help lists the exit codes', async () => {
    const r = await runCli(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Exit codes:\n\s+0 .*\n\s+1 .*instance/);
    assert.match(r.stdout, /\n\s+2 +usage error[\s\S]*invalid input/);
  });

  test('ca init refuses to replace a root without --force', async () => {
    const r = await cli('ca', 'init');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /already stored.*--force/);
  });
});

describe('CLI with a running daemon', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
    await writeFile(
      join(stack.dir, 'certd.yaml'),
      `dataDir: ./data\nhaproxy: { certDir: ./certs }\napi: { listen: "${stack.config.api.listen}" }\n`,
    );
  });
  after(() => stack.stop());

  test('issue goes through the daemon and is served when the command returns', async () => {
    const r = await runCli(['--config', join(stack.dir, 'certd.yaml'), 'issue', 'via-cli.test']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /served by 1\/1 instance/);
    const hs = await handshake(stack.tlsPort, 'via-cli.test', { ca: await stack.rootPem() });
    assert.equal(hs.authorized, true);
    const status = await runCli(['--config', join(stack.dir, 'certd.yaml'), 'status']);
    assert.match(status.stdout, /^INSTANCE\s+RUNTIME\s+STATE\s+PID\s+IN SYNC\s+MISSING\s+STALE\s+LAST ERROR$/m);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^h1\s+unix:\S+\s+up\s+\d+\s+1\s+0\s+0$/m);
    await stack.daemon.deployer.drain(); // the crt-list is rewritten behind the push
    assert.match(await readFile(stack.config.haproxy.crtList, 'utf8'), /via-cli\.test\.pem via-cli\.test$/m);
  });
});

describe('CLI with a daemon and one instance down', () => {
  let stack: Stack;
  let cfg: string;
  before(async () => {
    // h2's runtime socket does not exist: the daemon reports it down and keeps retrying.
    stack = await startStack({}, {}, { moreInstances: [{ name: 'h2', runtime: `unix:${join(tmpdir(), 'certd-no-such-dir', 'h2.sock')}` }] });
    cfg = join(stack.dir, 'certd.yaml');
    await writeFile(cfg, `dataDir: ./data\nhaproxy: { certDir: ./certs }\napi: { listen: "${stack.config.api.listen}" }\n`);
  });
  after(() => stack.stop());

  test('status exits 1 naming the instance that is down; issue exits 1 naming where it is pending', async () => {
    // The daemon's first connect attempt to h2 decides "down"; generous for a loaded machine.
    const deadline = Date.now() + 60_000;
    let status = await runCli(['--config', cfg, 'status', '--json']);
    while (!JSON.parse(status.stdout).failing?.includes('h2') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      status = await runCli(['--config', cfg, 'status', '--json']);
    }
    assert.equal(status.code, 1, status.stdout);
    assert.deepEqual(JSON.parse(status.stdout).failing, ['h2'], 'h2 reported down within 60 s');
    const text = await runCli(['--config', cfg, 'status']);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /^h2\s+unix:\S+\s+down/m);
    assert.match(text.stderr, /not serving: h2 \(down/);

    const issued = await runCli(['--config', cfg, 'issue', 'half.test']);
    assert.equal(issued.code, 1, issued.stderr);
    assert.match(issued.stdout, /half\.test: issued, .*served by 1\/2 instance\(s\)\n\s+not yet on h2: .*\(retrying\)/);
    const json = await runCli(['--config', cfg, 'issue', 'half.test', '--json']);
    assert.equal(json.code, 1);
    const doc = JSON.parse(json.stdout);
    assert.deepEqual([doc.via, doc.deploy.ok, doc.deploy.failed.map((f: { instance: string }) => f.instance)], ['daemon', ['h1'], ['h2']]);
  });
});

describe('CLI with a daemon and one instance still starting', () => {
  let stack: Stack;
  let cfg: string;
  let silent: Server;
  const held = new Set<Socket>();
  before(async () => {
    // Gives the prompt at once, then answers each command 12 s late (within the client's 15 s
    // bound) with an empty reply: h3's first reconcile takes ~45 s, and h3 is "starting" meanwhile.
    silent = createServer((socket) => {
      held.add(socket);
      let prompted = false;
      socket.on('data', () => {
        if (prompted) setTimeout(() => socket.writable && socket.write('\n> '), 12_000).unref();
        else socket.write('\n> ');
        prompted = true;
      });
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    stack = await startStack({}, {}, { moreInstances: [{ name: 'h3', runtime: `tcp:127.0.0.1:${port}` }] });
    cfg = join(stack.dir, 'certd.yaml');
    await writeFile(cfg, `dataDir: ./data\nhaproxy: { certDir: ./certs }\napi: { listen: "${stack.config.api.listen}" }\n`);
  });
  after(async () => {
    await stack.stop();
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  test('status shows an instance in state starting and exits 1 for it: it is not in sync yet', async () => {
    const [r, text] = await Promise.all([runCli(['--config', cfg, 'status', '--json']), runCli(['--config', cfg, 'status'])]);
    const doc = JSON.parse(r.stdout);
    const h3 = doc.instances.find((i: { name: string }) => i.name === 'h3');
    if (h3.state !== 'starting' || !/^h3 .*starting/m.test(text.stdout)) {
      return assert.fail(`h3 left "starting" before the CLI asked (${h3.state}): a machine too slow for this window?\n${text.stdout}`);
    }
    assert.equal(r.code, 1);
    assert.deepEqual([doc.starting, doc.failing], [['h3'], []]);
    assert.match(r.stderr, /not in sync yet \(starting\): h3/);
    assert.match(text.stdout, /^h3\s+tcp:127\.0\.0\.1:\d+\s+starting/m);
    assert.equal(text.code, 1);
    assert.match((await runCli(['status', '--help'])).stdout, /still\s+starting/);
  });
});

describe('config search from the CLI: --config, CERTD_CONFIG, ./certd.yaml', () => {
  let dir: string;
  before(async () => {
    dir = tempDir('certd-locate-');
    const yaml = (certDir: string) => `dataDir: ./data\nhaproxy: { certDir: ./${certDir} }\napi: { listen: "127.0.0.1:1" }\n`;
    await writeFile(join(dir, 'certd.yaml'), yaml('local-certs'));
    await writeFile(join(dir, 'env.yaml'), yaml('env-certs'));
    await writeFile(join(dir, 'flag.yaml'), yaml('flag-certs'));
  });
  // haproxy-config prints the crt-list path, which names the certDir of the config it loaded.
  const used = async (args: string[], env: NodeJS.ProcessEnv) => {
    const r = await runCli([...args, 'haproxy-config'], { cwd: dir, env: { CERTD_CONFIG: '', ...env } });
    assert.equal(r.code, 0, r.stderr);
    return /crt-list \S+\/(\w+-certs)\/crt-list\.txt/.exec(r.stdout)?.[1];
  };

  test('each source wins over the next, and none found is a usage error saying where it looked', async () => {
    assert.equal(await used([], {}), 'local-certs');
    assert.equal(await used([], { CERTD_CONFIG: join(dir, 'env.yaml') }), 'env-certs');
    assert.equal(await used(['--config', join(dir, 'flag.yaml')], { CERTD_CONFIG: join(dir, 'env.yaml') }), 'flag-certs');
    const empty = await mkdtemp(join(dir, 'empty-'));
    const none = await runCli(['list'], { cwd: empty, env: { CERTD_CONFIG: '' } });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no config file: looked for \S+certd\.yaml and \/etc\/haproxy-certd\/certd\.yaml/);
  });
});
