import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, spawnCli } from './helpers/cli.js';
import { eventually, freePort } from './helpers/stack.js';
import { stopChild } from './helpers/children.js';
import { tempDir } from './helpers/temp-dir.js';

const version = (JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const dir = tempDir('certd-version-');

test('--version and -V print the package version, exit 0', async () => {
  for (const flag of ['--version', '-V']) {
    const r = await runCli([flag]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), version);
  }
});

test('the daemon logs its version at start and exposes certd_build_info{version}', async () => {
  const port = await freePort();
  await writeFile(join(dir, 'certd.yaml'), `dataDir: ./data\nhaproxy: { certDir: ./certs }\napi: { listen: "127.0.0.1:${port}" }\n`);
  const child = spawnCli(['--config', join(dir, 'certd.yaml'), 'run']);
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  try {
    await eventually(async () => /daemon started/.test(log), 30_000, `daemon start (log: ${log})`);
    const started = log.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; version?: string }).find((l) => l.msg === 'daemon started');
    assert.equal(started?.version, version);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(metrics, new RegExp(`^certd_build_info\\{version="${version.replaceAll('.', '\\.')}"\\} 1$`, 'm'));
  } finally {
    await stopChild(child);
  }
});
