import assert from 'node:assert/strict';
import { access, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { isTempFileName } from '../src/core/atomic-write.js';
import { demoHaproxyConfig } from '../src/haproxy/assets/config.js';
import { spawnFixture } from './fixtures/store/spawn.js';
import { TrackedHaproxy } from './helpers/children.js';
import { freePort } from './helpers/ports.js';
import { tempDir } from './helpers/temp-dir.js';
import { handshake, makeCert } from './helpers/tls.js';

/*
 * The crt-list and known.map are rewritten off the answer path (deferred, coalesced), the PEMs
 * batched: a deployer killed at any moment of that must leave files a real HAProxy starts from,
 * naming only PEMs on disk, serving what they name.
 */

test('a deployer SIGKILLed at random moments of its writes leaves a crt-list HAProxy starts from and serves', async (t) => {
  const dir = tempDir('certd-deploy-crash-');
  const certDir = join(dir, 'certs');
  const crtList = join(certDir, 'crt-list.txt');
  const made = await Promise.all(['default.invalid', 'a.crash.test', 'b.crash.test', 'c.crash.test'].map((n) => makeCert(n, 2)));
  const [def, ...bundles] = made.map((c) => ({ certPem: c.certPem, keyPem: c.keyPem }));
  const bundlesFile = join(dir, 'bundles.json');
  await writeFile(bundlesFile, JSON.stringify({ default: def, bundles }));
  const serials = new Set(made.slice(1).map((c) => c.serial));
  const tlsPort = await freePort();
  const configFile = join(dir, 'haproxy.cfg');
  await writeFile(configFile, demoHaproxyConfig({ adminSocket: join(dir, 'admin.sock'), crtList, bind: `127.0.0.1:${tlsPort}` }));
  let leftovers = 0;
  const rounds = 8;
  for (let round = 0; round < rounds; round++) {
    const writer = spawnFixture('../deploy/write-loop.ts', [certDir, bundlesFile]);
    try {
      await writer.waitFor(/^op \d+$/, 60_000);
      await sleep(Math.random() * 300);
    } finally {
      await writer.kill();
    }
    const names = await readdir(certDir);
    leftovers += names.filter(isTempFileName).length;
    const lines = (await readFile(crtList, 'utf8')).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    assert.ok(lines.length >= 1, `round ${round}: the crt-list lost its default line`);
    assert.match(lines[0]!, /_default\.pem$/, `round ${round}: the default certificate is the first line`);
    for (const line of lines) {
      const pem = line.split(' ')[0]!;
      await access(pem).catch(() => assert.fail(`round ${round}: the crt-list names ${pem}, which is not on disk`));
    }
    // A real HAProxy starts from exactly these files and serves what the crt-list names.
    const haproxy = new TrackedHaproxy({ configFile, masterSocket: join(dir, 'master.sock'), runtimeSocket: join(dir, 'admin.sock'), startTimeoutMs: 30_000 });
    await haproxy.start();
    try {
      const listed = lines.slice(1).map((l) => l.split(' ').at(-1)!);
      for (const name of listed.slice(0, 5)) {
        const served = await handshake(tlsPort, name, { timeoutMs: 5_000 });
        assert.ok(serials.has(served.serial), `round ${round}: ${name} is listed but HAProxy served ${served.subject}`);
      }
    } finally {
      await haproxy.stop().catch(() => haproxy.kill());
    }
  }
  t.diagnostic(`temp files left behind by the kills, across ${rounds} rounds: ${leftovers}`);
});
