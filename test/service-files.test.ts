import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { configFromObject, loadConfig } from '../src/config/load.js';
import { SYSTEM_CONFIG } from '../src/config/locate.js';
import { silentLogger } from '../src/core/log.js';
import { Daemon } from '../src/daemon/daemon.js';
import { writeInitialHaproxyFiles } from '../src/daemon/initial-files.js';
import { freePort } from './helpers/ports.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('..', import.meta.url));
const CONTRIB = join(REPO, 'contrib');
const HAPROXY = process.env.CERTD_HAPROXY_BIN || '/usr/sbin/haproxy';
const version = (JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

interface Instruction {
  keyword: string;
  args: string;
}

/** Dockerfile instructions, continuation lines joined, comments dropped (no engine here to parse it). */
function dockerfile(text: string): Instruction[] {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [keyword = '', ...rest] = l.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

/**
 * The machine has no container engine (and CI neither): the Dockerfile and the Swarm stack are
 * checked as far as that allows — parsed, their pieces cross-checked with the code, the compose
 * schema validated by docker-compose, the HAProxy config by `haproxy -c`, the health check run
 * against a real daemon. Building the image and deploying the stack are not done here.
 */
describe('Dockerfile (linted and cross-checked, not built here)', () => {
  const read = async () => dockerfile(await readFile(join(CONTRIB, 'docker', 'Dockerfile'), 'utf8'));

  test('Node 20 slim stages, a non-root user in the final stage, config where the CLI looks, sources that exist', async () => {
    const steps = await read();
    const froms = steps.filter((s) => s.keyword === 'FROM');
    assert.ok(froms.length > 0);
    for (const f of froms) assert.match(f.args, /^node:20-[a-z]+-slim\b/, f.args);
    const final = steps.slice(steps.lastIndexOf(froms.at(-1)!));
    const user = final.filter((s) => s.keyword === 'USER').at(-1);
    assert.ok(user && !/^(root|0)(:|$)/.test(user.args), `final stage runs as ${user?.args ?? 'root'}`);
    assert.ok(final.indexOf(user) < final.findIndex((s) => s.keyword === 'ENTRYPOINT'), 'USER comes before ENTRYPOINT');
    assert.match(final.find((s) => s.keyword === 'ENV')?.args ?? '', new RegExp(`CERTD_CONFIG=${SYSTEM_CONFIG}\\b`));
    const ignored = (await readFile(join(REPO, '.dockerignore'), 'utf8')).split('\n').filter(Boolean);
    for (const copy of steps.filter((s) => s.keyword === 'COPY' && !s.args.startsWith('--from'))) {
      const sources = copy.args.split(/\s+/).slice(0, -1);
      for (const src of sources) {
        assert.ok(existsSync(join(REPO, src)), `COPY ${src}: not in the repository`);
        assert.ok(!ignored.includes(src), `COPY ${src}: excluded by .dockerignore`);
      }
    }
  });

  test('the HEALTHCHECK command itself passes against a running daemon\'s /healthz, and fails without one', async () => {
    const hc = (await read()).find((s) => s.keyword === 'HEALTHCHECK');
    assert.ok(hc, 'no HEALTHCHECK');
    const cmd = JSON.parse(/\bCMD\s+(\[.*\])$/.exec(hc.args)?.[1] ?? 'null') as string[] | null;
    assert.ok(cmd && cmd[0] === 'node', `HEALTHCHECK should use node in exec form (slim has no curl): ${hc.args}`);
    assert.ok(cmd.join(' ').includes('http://127.0.0.1:9180/healthz'));
    const dir = await mkdtemp(join(tmpdir(), 'certd-healthz-'));
    const port = await freePort();
    const args = cmd.slice(1).map((a) => a.replace('127.0.0.1:9180', `127.0.0.1:${port}`));
    try {
      await assert.rejects(run(process.execPath, args, { timeout: 30_000 }), 'healthy with no daemon');
      const daemon = await Daemon.start(configFromObject({ dataDir: './data', haproxy: { certDir: './certs' }, api: { listen: `127.0.0.1:${port}` } }, dir), { log: silentLogger });
      try {
        await run(process.execPath, args, { timeout: 30_000 });
      } finally {
        await daemon.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('Swarm stack (validated and cross-checked, not deployed here)', () => {
  const swarm = join(CONTRIB, 'swarm');

  test('docker-compose validates the stack file against the compose schema', async () => {
    const r = await run('docker-compose', ['-f', join(swarm, 'stack.yml'), 'config', '-q'], { cwd: swarm, env: { ...process.env, CERTD_TOKEN: 'check-only' }, timeout: 60_000 });
    assert.doesNotMatch(r.stderr, /invalid|error/i, r.stderr);
  });

  test('the daemon finds the replicas through tasks.<service> on the port their stats socket listens on; paths agree', async () => {
    const stack = parse(await readFile(join(swarm, 'stack.yml'), 'utf8')) as {
      services: Record<string, { image: string; volumes: string[]; configs: { source: string; target: string }[] }>;
      configs: Record<string, { file: string }>;
    };
    const config = await loadConfig(join(swarm, 'certd.yaml'), { CERTD_TOKEN: 'check-only' });
    const discover = config.haproxy.discover;
    assert.ok(discover, 'certd.yaml discovers its instances');
    const haproxyService = /^tasks\.(.+)$/.exec(discover.dns)?.[1];
    assert.ok(haproxyService && stack.services[haproxyService], `${discover.dns}: no such service in stack.yml`);
    assert.equal(stack.services.certd?.image, `haproxy-certd:${version}`, 'the stack runs this version\'s image');

    const haproxyCfg = await readFile(join(swarm, 'haproxy.cfg'), 'utf8');
    assert.match(haproxyCfg, new RegExp(`stats socket ipv4@0\\.0\\.0\\.0:${discover.port} level admin`));
    assert.ok(haproxyCfg.includes(`crt-list ${config.haproxy.crtList} `), 'HAProxy loads the crt-list the daemon writes');
    const mounts = (svc: string) => stack.services[svc]!.volumes.map((v) => v.split(':')[1]);
    assert.ok(mounts(haproxyService).includes(config.haproxy.certDir) && mounts('certd').includes(config.haproxy.certDir), 'both mount certDir');
    assert.ok(mounts('certd').includes(config.dataDir), 'the store is on a volume');
    const cfgTarget = (svc: string, file: string) => stack.services[svc]!.configs.find((c) => stack.configs[c.source]?.file === file)?.target;
    assert.equal(cfgTarget('certd', './certd.yaml'), SYSTEM_CONFIG);
    assert.equal(cfgTarget(haproxyService, './haproxy.cfg'), '/usr/local/etc/haproxy/haproxy.cfg');
  });

  test('the stack\'s haproxy.cfg passes haproxy -c with no warning once the initial files exist', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'certd-swarmcfg-'));
    try {
      const config = await loadConfig(join(swarm, 'certd.yaml'), { CERTD_TOKEN: 'check-only' });
      const certDir = join(dir, 'certd');
      const local = configFromObject({ dataDir: join(dir, 'data'), haproxy: { certDir } }, dir);
      await writeInitialHaproxyFiles(local, silentLogger);
      const file = join(dir, 'haproxy.cfg');
      await writeFile(file, (await readFile(join(swarm, 'haproxy.cfg'), 'utf8')).replaceAll(config.haproxy.certDir, certDir));
      const r = await run(HAPROXY, ['-c', '-f', file], { timeout: 30_000 });
      assert.doesNotMatch(r.stdout + r.stderr, /\[(WARNING|ALERT)\]|Warnings were found/, r.stdout + r.stderr);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('systemd helpers: sysusers.d and tmpfiles.d, applied to a temp root', () => {
  test('the user (in group haproxy), certDir (haproxy-certd:haproxy 0750) and the store dir (0700) are made as documented', async () => {
    const root = await mkdtemp(join(tmpdir(), 'certd-sysroot-'));
    try {
      await mkdir(join(root, 'etc'));
      await run('systemd-sysusers', [`--root=${root}`, join(CONTRIB, 'systemd', 'haproxy-certd.sysusers.conf')], { timeout: 30_000 });
      const passwd = await readFile(join(root, 'etc', 'passwd'), 'utf8');
      const group = await readFile(join(root, 'etc', 'group'), 'utf8');
      const user = /^haproxy-certd:x:(\d+):(\d+):[^:]*:\/var\/lib\/haproxy-certd:/m.exec(passwd);
      assert.ok(user, passwd);
      const haproxyGroup = /^haproxy:x:(\d+):(.*)$/m.exec(group);
      assert.ok(haproxyGroup && haproxyGroup[2]!.split(',').includes('haproxy-certd'), group);
      await run('systemd-tmpfiles', [`--root=${root}`, '--create', join(CONTRIB, 'systemd', 'haproxy-certd.tmpfiles.conf')], { timeout: 30_000 });
      const certDir = await stat(join(root, 'etc', 'haproxy', 'certd'));
      assert.equal(certDir.mode & 0o777, 0o750);
      assert.equal(String(certDir.uid), user[1]);
      assert.equal(String(certDir.gid), haproxyGroup[1]);
      const store = await stat(join(root, 'var', 'lib', 'haproxy-certd'));
      assert.equal(store.mode & 0o777, 0o700);
      assert.equal(String(store.uid), user[1]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
