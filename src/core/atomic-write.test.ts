import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeFileSync, removeLeftoverFiles, replaceFileSync, syncDir, type SweepMemo } from './atomic-write.js';

const temp = (name: string) => `.${name}.0123456789abcdef.tmp`;
/** An hour ago: far past the slack a fresh mtime gets. */
const HOUR_AGO = Date.now() - 3_600_000;
/** Sets a directory's mtime to HOUR_AGO + `s` seconds (the same value each time for the same `s`). */
const age = (dir: string, s = 0) => {
  const t = new Date(HOUR_AGO + s * 1_000);
  return utimes(dir, t, t);
};

test('a remembered sweep skips a directory whose mtime has not moved, and reads it again once it has', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'certd-sweep-'));
  try {
    const memo: SweepMemo = new Map();
    const sweep = (olderThanMs = 0) => removeLeftoverFiles(dir, { olderThanMs, memo });
    await writeFile(join(dir, 'kept.json'), '');
    await writeFile(join(dir, temp('a')), '');
    await age(dir);
    assert.equal(await sweep(), 1, 'a leftover is removed');
    assert.equal(memo.has(dir), false, 'not remembered: the removal moved the mtime');
    await age(dir);
    assert.equal(await sweep(), 0);
    assert.equal(memo.has(dir), true, 'a read that left nothing is remembered');
    // A leftover whose directory mtime is put back to the remembered one: proof the directory is not read.
    await writeFile(join(dir, temp('b')), '');
    await age(dir);
    assert.equal(await sweep(), 0, 'unchanged mtime: not read');
    await age(dir, 1);
    assert.equal(await sweep(), 1, 'the mtime moved: read, and the leftover removed');
    assert.deepEqual(await readdir(dir), ['kept.json']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a remembered sweep still looks into subdirectories, and reads again a directory it left a young leftover in', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'certd-sweep-'));
  try {
    const memo: SweepMemo = new Map();
    const sub = join(dir, 'sub');
    await mkdir(sub);
    await age(sub);
    await age(dir);
    assert.equal(await removeLeftoverFiles(dir, { olderThanMs: 0, memo }), 0);
    await writeFile(join(sub, temp('c')), '');
    await age(sub, 1);
    assert.equal(await removeLeftoverFiles(dir, { olderThanMs: 0, memo }), 1, 'the parent is skipped, its subdirectory is not');
    // Too young to remove: left, and the directory is not remembered (the next sweep must see it).
    await writeFile(join(dir, temp('young')), '');
    assert.equal(await removeLeftoverFiles(dir, { olderThanMs: 60_000, memo }), 0);
    assert.equal(memo.has(dir), false);
    await age(dir, 2);
    assert.equal(await removeLeftoverFiles(dir, { olderThanMs: 0, memo }), 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('replaceFileSync replaces a file whole with the mode asked, and a refusal before the rename leaves it as it was', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'certd-replace-'));
  try {
    const path = join(dir, 'intent.json');
    replaceFileSync(path, 'one', { mode: 0o644 });
    replaceFileSync(path, 'two', { mode: 0o644 });
    assert.equal(await readFile(path, 'utf8'), 'two');
    assert.equal((await stat(path)).mode & 0o777, 0o644);
    assert.throws(() => replaceFileSync(path, 'three', { beforeRename: () => { throw new Error('fenced'); } }), /fenced/);
    assert.equal(await readFile(path, 'utf8'), 'two', 'untouched');
    assert.deepEqual(await readdir(dir), ['intent.json'], 'no temp file left');
    assert.equal(removeFileSync(path), true);
    assert.equal(removeFileSync(path), false, 'already gone');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('syncDir: concurrent callers share fsyncs and all resolve; a failure reaches only its own callers', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'certd-syncdir-'));
  try {
    await Promise.all(Array.from({ length: 20 }, () => syncDir(dir)));
    const missing = join(dir, 'missing');
    const failed = await Promise.allSettled([syncDir(missing), syncDir(missing), syncDir(dir)]);
    assert.deepEqual(failed.map((r) => r.status), ['rejected', 'rejected', 'fulfilled']);
    await mkdir(missing);
    await syncDir(missing); // the failed ones left nothing behind that holds this one
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
