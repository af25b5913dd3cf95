import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DaemonClient } from '../src/cli/daemon-client.js';
import { readToken } from '../src/daemon/token.js';
import { FsStore } from '../src/store/fs/fs-store.js';
import { selfSigned } from './helpers/certs.js';
import { isAlive, killedAtExit, stopChild } from './helpers/children.js';
import { startHaproxy, type TestHaproxy } from './helpers/haproxy.js';
import { eventually, freePort, handshake } from './helpers/stack.js';
import { tempDir } from './helpers/temp-dir.js';

/** The built CLI (npm test builds it first): starting it 20 times from source would take minutes. */
const BUILT_CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const TRIALS = 20;

let dir: string;
let haproxy: TestHaproxy;
before(async () => {
  dir = tempDir('certd-crashloop-');
  haproxy = await startHaproxy();
});
after(async () => {
  await haproxy?.stop();
});

/** Every file under `root` (recursively) with its age in ms. */
async function filesUnder(root: string): Promise<{ path: string; name: string; ageMs: number }[]> {
  const out: { path: string; name: string; ageMs: number }[] = [];
  for (const entry of await readdir(root, { withFileTypes: true }).catch(() => [])) {
    const path = join(root, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(path)));
    else out.push({ path, name: entry.name, ageMs: Date.now() - (await stat(path).then((s) => s.mtimeMs, () => Date.now())) });
  }
  return out;
}


test(`kill -9 in a loop (${TRIALS} trials) during issue, renew and import: each restart leaves no leftovers and redoes killed renewals`, async () => {
  const apiPort = await freePort();
  const dataDir = join(dir, 'data');
  const certDir = join(haproxy.dir, 'certs');
  await writeFile(
    join(dir, 'certd.yaml'),
    [
      `dataDir: ${dataDir}`,
      `haproxy: { instances: [ { runtime: "${haproxy.runtime}" } ], certDir: ${certDir}, crtList: ${haproxy.crtList} }`,
      // RSA keys take 100-300 ms: a kill lands mid-issue often.
      'issuers: { internal: { type: local-ca, keyType: rsa-2048 } }',
      `api: { listen: "127.0.0.1:${apiPort}" }`,
      '',
    ].join('\n'),
  );
  const imports = await Promise.all(Array.from({ length: TRIALS }, (_, i) => selfSigned(`imported${i}.crash.test`)));
  const renewedSerialBefore = new Map<string, string>();
  const store = await FsStore.open(dataDir);
  let killedMidRenewal = 0;
  let killedMidIssue = 0;
  try {
    for (let trial = 0; trial <= TRIALS; trial++) {
      const child = killedAtExit(spawn(process.execPath, [BUILT_CLI, '--config', join(dir, 'certd.yaml'), 'run'], { stdio: ['ignore', 'ignore', 'pipe'] }));
      let log = '';
      child.stderr.on('data', (d) => (log += d));
      try {
        await eventually(async () => /daemon started/.test(log), 60_000, `trial ${trial}: the daemon's "daemon started" log line (log: ${log.slice(-2000)})`);
        // What the previous kill left must be gone once the restart has caught up.
        await eventually(async () => (await store.listPending()).length === 0, 60_000, `trial ${trial}: every pending intent finished or removed (${JSON.stringify(await store.listPending())})`);
        for (const [id, serial] of renewedSerialBefore) {
          const now = await store.loadCert(id);
          assert.ok(now && now.meta.serial !== serial, `trial ${trial}: renewal of ${id} killed mid-way was completed (serial still ${serial})`);
        }
        renewedSerialBefore.clear();
        const leftovers = [...(await filesUnder(dataDir)), ...(await filesUnder(certDir))].filter((f) => f.name.endsWith('.tmp') && f.ageMs > 60_000);
        assert.deepEqual(leftovers, [], `trial ${trial}: temp files older than a minute`);
        for (const lock of (await filesUnder(join(dataDir, 'locks'))).filter((f) => f.name.endsWith('.lock'))) {
          const owner = (JSON.parse(await readFile(lock.path, 'utf8').catch(() => '{}')) as { owner?: string }).owner ?? '';
          const pid = Number(owner.split(':')[1]);
          assert.ok(isAlive(pid) || lock.ageMs < 30_000, `trial ${trial}: lock ${lock.path} of dead owner ${owner} is ${lock.ageMs} ms old`);
        }
        if (trial === TRIALS) break;

        // Mixed work, killed at a random moment.
        const token = (await readToken(dataDir))!;
        const api = new DaemonClient(`http://127.0.0.1:${apiPort}`, token);
        const stored = await store.listCerts();
        const calls: Promise<unknown>[] = [
          api.call('POST', '/certs', { names: [`issued${trial}.crash.test`] }),
          api.call('POST', '/import', { cert: imports[trial]!.pem }),
        ];
        const toRenew = stored.filter((m) => m.issuer === 'internal').slice(0, 2);
        if (toRenew.length > 0) calls.push(api.call('POST', '/renew', { names: toRenew.map((m) => m.id) }));
        const settled = Promise.allSettled(calls);
        await new Promise((r) => setTimeout(r, 20 + Math.random() * 400));
        child.kill('SIGKILL');
        await once(child, 'close');
        await settled;
        for (const p of await store.listPending()) {
          if (!p.renew) {
            killedMidIssue++;
            continue;
          }
          killedMidRenewal++;
          const old = toRenew.find((m) => m.id === p.id);
          if (old) renewedSerialBefore.set(p.id, old.serial);
        }
      } finally {
        await stopChild(child);
      }
    }
  } finally {
    await store.close();
  }
  console.log(`${TRIALS} kills: ${killedMidIssue} landed mid-issue, ${killedMidRenewal} mid-renewal`);
  assert.ok(killedMidIssue + killedMidRenewal > 0, 'at least one kill should land mid-work');
  // Everything that was acknowledged or finished at a restart is served.
  for (const meta of (await (await FsStore.open(dataDir)).listCerts()).slice(0, 5)) {
    assert.equal((await handshake(haproxy.tlsPort, meta.names[0]!)).serial, meta.serial, meta.id);
  }
});
