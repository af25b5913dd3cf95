import assert from 'node:assert/strict';
import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { certFacts } from '../src/core/bundle.js';
import { errorCode } from '../src/core/errors.js';
import { DirectorySource } from '../src/sources/directory.js';
import type { SourceSink } from '../src/sources/source.js';
import { selfSigned } from './helpers/certs.js';
import { tempDir } from './helpers/temp-dir.js';

const DAY = 86_400_000;

type Event =
  | { op: 'put'; key: string; fingerprint: string; names: string[] }
  | { op: 'drop'; key: string }
  | { op: 'reject'; key: string; code: string | undefined; message: string };

/** Records sink calls; `next` waits (bounded) for the first matching call after a mark. */
class Recorder implements SourceSink {
  readonly events: Event[] = [];
  private wake?: () => void;

  async put(key: string, certPem: string): Promise<void> {
    const facts = certFacts(certPem);
    this.push({ op: 'put', key, fingerprint: facts.fingerprint, names: facts.names });
  }
  async drop(key: string): Promise<void> {
    this.push({ op: 'drop', key });
  }
  reject(key: string, error: Error): void {
    this.push({ op: 'reject', key, code: errorCode(error), message: error.message });
  }

  mark(): number {
    return this.events.length;
  }

  since(mark: number): Event[] {
    return this.events.slice(mark);
  }

  async next(mark: number, match: (e: Event) => boolean, timeoutMs = 2_000): Promise<Event> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.slice(mark).find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching sink call within ${timeoutMs} ms; got ${JSON.stringify(this.since(mark))}`);
      await Promise.race([new Promise<void>((r) => (this.wake = r)), sleep(left)]);
    }
  }

  private push(e: Event): void {
    this.events.push(e);
    this.wake?.();
  }
}

/** Replaces a symlink atomically, the way a careful tool (and the kubelet for ..data) does. */
async function swapLink(target: string, link: string): Promise<void> {
  const tmp = `${link}.tmp-${process.pid}`;
  await symlink(target, tmp);
  await rename(tmp, link);
}

describe('DirectorySource', () => {
  let dir: string;
  const sources: DirectorySource[] = [];
  const open = async (path: string, opts: { everyMs?: number; debounceMs?: number } = {}) => {
    const rec = new Recorder();
    const source = new DirectorySource({ path, everyMs: opts.everyMs ?? 60_000, debounceMs: opts.debounceMs ?? 100 });
    sources.push(source);
    await source.start(rec);
    return { rec, source };
  };

  before(async () => {
    dir = tempDir('certd-dirsrc-');
  });
  afterEach(async () => {
    await Promise.all(sources.splice(0).map((s) => s.stop()));
  });

  test('certbot layout: live/ links into archive/; a renewal re-links and is put; a half-renewal is rejected', async () => {
    const le = join(dir, 'letsencrypt');
    const archive = join(le, 'archive', 'a.test');
    const live = join(le, 'live', 'a.test');
    await mkdir(archive, { recursive: true });
    await mkdir(live, { recursive: true });
    // certbot's own folders hold keys and CSRs without certificates: never read as bundles.
    await mkdir(join(le, 'keys'));
    const v1 = await selfSigned('a.test');
    await writeFile(join(le, 'keys', '0000_key-certbot.pem'), v1.keyPem);
    await writeFile(join(archive, 'fullchain1.pem'), v1.certPem);
    await writeFile(join(archive, 'cert1.pem'), v1.certPem);
    await writeFile(join(archive, 'privkey1.pem'), v1.keyPem);
    for (const kind of ['fullchain', 'cert', 'privkey']) await symlink(`../../archive/a.test/${kind}1.pem`, join(live, `${kind}.pem`));
    await writeFile(join(le, 'live', 'README'), 'certbot readme\n');

    // Pointed at /etc/letsencrypt itself: bundles are found two levels down.
    const { rec } = await open(le);
    assert.deepEqual(rec.events, [{ op: 'put', key: live, fingerprint: v1.fingerprint, names: ['a.test'] }]);

    const v2 = await selfSigned('a.test');
    let mark = rec.mark();
    await writeFile(join(archive, 'fullchain2.pem'), v2.certPem);
    await writeFile(join(archive, 'privkey2.pem'), v2.keyPem);
    await swapLink('../../archive/a.test/privkey2.pem', join(live, 'privkey.pem'));
    await swapLink('../../archive/a.test/fullchain2.pem', join(live, 'fullchain.pem'));
    const renewed = await rec.next(mark, (e) => e.op === 'put');
    assert.deepEqual(renewed, { op: 'put', key: live, fingerprint: v2.fingerprint, names: ['a.test'] });

    // Half-renewed: the new chain is linked, the key is still the old one.
    const v3 = await selfSigned('a.test');
    mark = rec.mark();
    await writeFile(join(archive, 'fullchain3.pem'), v3.certPem);
    await writeFile(join(archive, 'privkey3.pem'), v3.keyPem);
    await swapLink('../../archive/a.test/fullchain3.pem', join(live, 'fullchain.pem'));
    const rejected = await rec.next(mark, (e) => e.op === 'reject');
    assert.equal(rejected.key, live);
    assert.equal(rejected.op === 'reject' && rejected.code, 'CERTD_E_KEY_MISMATCH');
    await sleep(300);
    assert.ok(!rec.since(mark).some((e) => e.op === 'put'), 'a mismatched pair is never put');

    // certbot's unlink + symlink of the key completes the renewal.
    await rm(join(live, 'privkey.pem'));
    await symlink('../../archive/a.test/privkey3.pem', join(live, 'privkey.pem'));
    const completed = await rec.next(mark, (e) => e.op === 'put');
    assert.equal(completed.op === 'put' && completed.fingerprint, v3.fingerprint);
  });

  test('cert-manager secret mount: an atomic ..data swap is put', async () => {
    const secrets = join(dir, 'secrets');
    const web = join(secrets, 'web');
    const v1 = await selfSigned('web.test');
    await mkdir(join(web, '..2024_01_01'), { recursive: true });
    await writeFile(join(web, '..2024_01_01', 'tls.crt'), v1.certPem);
    await writeFile(join(web, '..2024_01_01', 'tls.key'), v1.keyPem);
    await writeFile(join(web, '..2024_01_01', 'ca.crt'), v1.certPem);
    await symlink('..2024_01_01', join(web, '..data'));
    for (const f of ['tls.crt', 'tls.key', 'ca.crt']) await symlink(`..data/${f}`, join(web, f));

    const { rec } = await open(secrets);
    assert.deepEqual(rec.events, [{ op: 'put', key: web, fingerprint: v1.fingerprint, names: ['web.test'] }]);

    const v2 = await selfSigned('web.test');
    const mark = rec.mark();
    await mkdir(join(web, '..2024_02_01'));
    await writeFile(join(web, '..2024_02_01', 'tls.crt'), v2.certPem);
    await writeFile(join(web, '..2024_02_01', 'tls.key'), v2.keyPem);
    await writeFile(join(web, '..2024_02_01', 'ca.crt'), v2.certPem);
    await swapLink('..2024_02_01', join(web, '..data'));
    await rm(join(web, '..2024_01_01'), { recursive: true });
    const put = await rec.next(mark, (e) => e.op === 'put');
    assert.deepEqual(put, { op: 'put', key: web, fingerprint: v2.fingerprint, names: ['web.test'] });
    await sleep(300);
    assert.deepEqual(rec.since(mark), [put], 'one swap, one put, nothing else');
  });

  test('combined PEMs: new, replaced, half-written and mismatched, expired, removed, unchanged rescans', async () => {
    const flat = join(dir, 'flat');
    await mkdir(flat);
    const a1 = await selfSigned('a.flat.test');
    await writeFile(join(flat, 'a.pem'), a1.certPem + a1.keyPem);
    await writeFile(join(flat, 'notes.txt'), 'not a PEM, not looked at\n');
    const { rec, source } = await open(flat);
    assert.deepEqual(rec.events, [{ op: 'put', key: join(flat, 'a.pem'), fingerprint: a1.fingerprint, names: ['a.flat.test'] }]);

    // A new file shows up (written in place, so first seen half-written at worst).
    const b = await selfSigned('b.flat.test');
    let mark = rec.mark();
    await writeFile(join(flat, 'b.pem'), b.certPem + b.keyPem);
    const putB = await rec.next(mark, (e) => e.op === 'put' && e.key === join(flat, 'b.pem'));
    assert.equal(putB.op === 'put' && putB.fingerprint, b.fingerprint);

    // Half-written: the chain is there, the key not yet. Reported, never put, a's old version stays.
    mark = rec.mark();
    const a2 = await selfSigned('a.flat.test');
    await writeFile(join(flat, 'a.pem'), a2.certPem);
    const half = await rec.next(mark, (e) => e.op === 'reject');
    assert.deepEqual([half.key, half.op === 'reject' && half.code], [join(flat, 'a.pem'), 'CERTD_E_BAD_PEM']);
    // The wrong key appended: still refused.
    await writeFile(join(flat, 'a.pem'), a2.certPem + b.keyPem);
    await rec.next(mark, (e) => e.op === 'reject' && e.code === 'CERTD_E_KEY_MISMATCH');
    assert.ok(!rec.since(mark).some((e) => e.op !== 'reject'), 'no put, no drop while a.pem is broken');
    // Finished: put.
    await writeFile(join(flat, 'a.pem'), a2.certPem + a2.keyPem);
    const fixed = await rec.next(mark, (e) => e.op === 'put');
    assert.equal(fixed.op === 'put' && fixed.fingerprint, a2.fingerprint);

    // Expired certificates are refused.
    mark = rec.mark();
    const old = await selfSigned('old.flat.test', { notAfter: new Date(Date.now() - DAY), notBefore: new Date(Date.now() - 30 * DAY) });
    await writeFile(join(flat, 'old.pem'), old.certPem + old.keyPem);
    await rec.next(mark, (e) => e.op === 'reject' && e.code === 'CERTD_E_CERT_EXPIRED' && e.key === join(flat, 'old.pem'));

    // Nothing changed: full rescans call nothing, also not for the broken file.
    await sleep(300);
    mark = rec.mark();
    await source.rescan();
    await source.rescan();
    assert.deepEqual(rec.since(mark), []);

    // Same certificate, other line endings: not a change.
    await writeFile(join(flat, 'b.pem'), (b.certPem + b.keyPem).replace(/\n/g, '\r\n'));
    await sleep(400);
    await source.rescan();
    assert.deepEqual(rec.since(mark), []);

    // Removed: dropped. The broken one was never put, so its removal calls nothing.
    mark = rec.mark();
    await rm(join(flat, 'b.pem'));
    await rm(join(flat, 'old.pem'));
    const dropped = await rec.next(mark, (e) => e.op === 'drop');
    assert.equal(dropped.key, join(flat, 'b.pem'));
    await sleep(400);
    assert.deepEqual(rec.since(mark), [dropped]);
  });

  test('folders: a new one is put, a removed one is dropped, a replaced one is not dropped', async () => {
    const live = join(dir, 'live');
    await mkdir(live);
    const { rec } = await open(live);
    assert.deepEqual(rec.events, []);

    const c = await selfSigned('c.test');
    let mark = rec.mark();
    // Built aside and moved in, like a careful deploy tool.
    await mkdir(join(dir, 'c.staging'));
    await writeFile(join(dir, 'c.staging', 'fullchain.pem'), c.certPem);
    await writeFile(join(dir, 'c.staging', 'privkey.pem'), c.keyPem);
    await rename(join(dir, 'c.staging'), join(live, 'c.test'));
    const put = await rec.next(mark, (e) => e.op === 'put');
    assert.equal(put.key, join(live, 'c.test'));

    // Replaced by rename-aside then move-in: the new folder gets a watcher, nothing is dropped.
    const c2 = await selfSigned('c.test');
    mark = rec.mark();
    await mkdir(join(dir, 'c.next'));
    await writeFile(join(dir, 'c.next', 'fullchain.pem'), c2.certPem);
    await writeFile(join(dir, 'c.next', 'privkey.pem'), c2.keyPem);
    await rename(join(live, 'c.test'), join(dir, 'c.old'));
    await rename(join(dir, 'c.next'), join(live, 'c.test'));
    const replaced = await rec.next(mark, (e) => e.op === 'put');
    assert.equal(replaced.op === 'put' && replaced.fingerprint, c2.fingerprint);
    await sleep(400);
    assert.ok(!rec.since(mark).some((e) => e.op === 'drop'), JSON.stringify(rec.since(mark)));

    // The new folder is watched: a change inside it is seen.
    const c3 = await selfSigned('c.test');
    mark = rec.mark();
    await writeFile(join(live, 'c.test', 'privkey.pem.new'), c3.keyPem);
    await writeFile(join(live, 'c.test', 'fullchain.pem.new'), c3.certPem);
    await rename(join(live, 'c.test', 'privkey.pem.new'), join(live, 'c.test', 'privkey.pem'));
    await rename(join(live, 'c.test', 'fullchain.pem.new'), join(live, 'c.test', 'fullchain.pem'));
    const changed = await rec.next(mark, (e) => e.op === 'put');
    assert.equal(changed.op === 'put' && changed.fingerprint, c3.fingerprint);

    mark = rec.mark();
    await rm(join(live, 'c.test'), { recursive: true });
    const dropped = await rec.next(mark, (e) => e.op === 'drop');
    assert.equal(dropped.key, join(live, 'c.test'));
  });

  test('a root that cannot be read drops nothing; periodic rescans pick it up again', async () => {
    const mount = join(dir, 'mount');
    await mkdir(join(mount, 'd.test'), { recursive: true });
    const d = await selfSigned('d.test');
    await writeFile(join(mount, 'd.test', 'fullchain.pem'), d.certPem);
    await writeFile(join(mount, 'd.test', 'privkey.pem'), d.keyPem);
    const { rec, source } = await open(mount, { everyMs: 200 });
    assert.equal(rec.events.length, 1);

    let mark = rec.mark();
    await rename(mount, `${mount}.unmounted`);
    const outage = await rec.next(mark, (e) => e.op === 'reject');
    assert.deepEqual([outage.key, outage.op === 'reject' && outage.code], [mount, 'CERTD_E_SOURCE_UNAVAILABLE']);
    await sleep(700);
    assert.ok(!rec.since(mark).some((e) => e.op === 'drop'), 'an unreadable root is an outage, not a removal');
    assert.equal(rec.since(mark).length, 1, 'the outage is reported once');

    // Back, with a renewed certificate: the periodic pass (no watcher survives) finds it.
    const d2 = await selfSigned('d.test');
    await writeFile(join(`${mount}.unmounted`, 'd.test', 'fullchain.pem'), d2.certPem);
    await writeFile(join(`${mount}.unmounted`, 'd.test', 'privkey.pem'), d2.keyPem);
    mark = rec.mark();
    await rename(`${mount}.unmounted`, mount);
    const back = await rec.next(mark, (e) => e.op === 'put');
    assert.equal(back.op === 'put' && back.fingerprint, d2.fingerprint);
    await source.stop();
    mark = rec.mark();
    await writeFile(join(mount, 'd.test', 'privkey.pem'), 'after stop');
    await sleep(400);
    assert.deepEqual(rec.since(mark), [], 'nothing after stop');
  });

  test('options are checked when the source is built', () => {
    assert.throws(() => new DirectorySource({ path: 'relative/path', everyMs: 1000 }), /absolute/);
    assert.throws(() => new DirectorySource({ path: '/x', everyMs: 0 }), /everyMs/);
  });
});
