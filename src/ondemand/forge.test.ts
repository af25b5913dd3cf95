import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../core/log.js';
import { certDirLayout } from '../haproxy/cert-dir.js';
import { createRoot } from '../issuers/local-ca/root.js';
import { LocalCa } from '../issuers/local-ca/ca.js';
import { Forge, type ForgeOptions } from './forge.js';

const dirs: string[] = [];
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
};
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

const base = async (certDir: string): Promise<ForgeOptions> => ({
  ca: LocalCa.fromRoot(await createRoot()),
  issuerId: 'internal',
  allow: ['*.gen.test'],
  deny: [],
  certDir,
  log: silentLogger,
});

test('files still good are kept at start; another root, other patterns or half the life gone → new files', async () => {
  const certDir = tempDir('certd-forge-unit-');
  const { forgeCaFile, forgeDefaultCert } = certDirLayout(certDir);
  const o = await base(certDir);
  (await Forge.start(o)).stop();
  const first = await readFile(forgeCaFile, 'utf8');
  for (const f of [forgeCaFile, forgeDefaultCert]) assert.equal((await stat(f)).mode & 0o777, 0o600);
  assert.ok(new X509Certificate(first).checkIssued(new X509Certificate(o.ca.rootPem)));

  (await Forge.start(o)).stop();
  assert.equal(await readFile(forgeCaFile, 'utf8'), first, 'a daemon restart keeps a good intermediate');

  (await Forge.start({ ...o, allow: ['*.gen.test', '*.other.test'] })).stop();
  const widened = await readFile(forgeCaFile, 'utf8');
  assert.notEqual(widened, first, 'other patterns: other constraints, a new intermediate');

  const otherRoot = { ...o, allow: ['*.gen.test', '*.other.test'], ca: LocalCa.fromRoot(await createRoot()) };
  (await Forge.start(otherRoot)).stop();
  const rerooted = await readFile(forgeCaFile, 'utf8');
  assert.notEqual(rerooted, widened, 'a new root: a new intermediate');
  assert.ok(new X509Certificate(rerooted).checkIssued(new X509Certificate(otherRoot.ca.rootPem)));

  // A 10-day intermediate is past half its life for a forge that wants 30 days: replaced.
  (await Forge.start({ ...otherRoot, validityMs: 10 * 86_400_000 })).stop();
  const short = await readFile(forgeCaFile, 'utf8');
  (await Forge.start({ ...otherRoot, validityMs: 30 * 86_400_000 })).stop();
  assert.notEqual(await readFile(forgeCaFile, 'utf8'), short);
});

test('rotation at half-life: the timer writes a new intermediate and a new forge key', async () => {
  const certDir = tempDir('certd-forge-rotate-');
  const { forgeCaFile, forgeDefaultCert } = certDirLayout(certDir);
  // 4 s of life: the half-life timer fires after ~2 s (timers are at least 1 s).
  const forge = await Forge.start({ ...(await base(certDir)), validityMs: 4_000 });
  try {
    const [ca, key] = await Promise.all([readFile(forgeCaFile, 'utf8'), readFile(forgeDefaultCert, 'utf8')]);
    const deadline = Date.now() + 15_000;
    while ((await readFile(forgeCaFile, 'utf8')) === ca) {
      assert.ok(Date.now() < deadline, 'the intermediate was not rotated at half-life within 15 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.notEqual(await readFile(forgeDefaultCert, 'utf8'), key, 'the forge key changes with the intermediate');
  } finally {
    forge.stop();
  }
});
