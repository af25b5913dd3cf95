import assert from 'node:assert/strict';
import { afterEach, describe, mock, test } from 'node:test';
import { pino } from 'pino';
import { HaproxyCommandError, HaproxyMisconfiguredError, HaproxyUnreachableError } from '../src/core/errors.js';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Deployer } from '../src/haproxy/deploy/deployer.js';
import type { DeployEntry } from '../src/haproxy/deploy/entry.js';
import { certWork, InstanceSync, mapWork, type InstanceOptions, type InstanceReload } from '../src/haproxy/deploy/instance.js';
import type { DeployMetrics } from '../src/haproxy/deploy/metrics.js';
import { MemoryInstance, memoryEntry } from './helpers/memory-instance.js';
import { tempDir } from './helpers/temp-dir.js';

/*
 * InstanceSync's state machine against an in-memory instance (no HAProxy): settle, backoff,
 * refusals, reload fallback, misconfigured and down → up. The same paths against real HAProxy:
 * reliability, reload-fallback, fleet and daemon tests.
 */

const KNOWN = '/certs/known.map';

class Recorded implements DeployMetrics {
  readonly up: boolean[] = [];
  errors = 0;
  observe() {}
  error() {
    this.errors++;
  }
  instanceUp(_instance: string, up: boolean) {
    this.up.push(up);
  }
  instanceGone() {}
}

interface Setup {
  haproxy: MemoryInstance;
  sync: InstanceSync;
  desired: Map<string, DeployEntry>;
  known: Map<string, string>;
  metrics: Recorded;
}

const running: InstanceSync[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

/** An InstanceSync over a MemoryInstance loading known.map, desiring `_default` and `ids`. */
function setup(ids: string[], o: Partial<InstanceOptions> = {}, haproxy = new MemoryInstance()): Setup {
  const desired = new Map<string, DeployEntry>([['_default', memoryEntry('_default')]]);
  const known = new Map<string, string>();
  for (const id of ids) {
    desired.set(id, memoryEntry(id));
    known.set(id, id);
  }
  haproxy.maps.set(KNOWN, new Map());
  const metrics = new Recorded();
  const sync = new InstanceSync({
    name: 'mem',
    client: haproxy,
    crtList: haproxy.crtList,
    certDir: '/certs',
    desired,
    desiredMaps: new Map([[KNOWN, known]]),
    knownMap: KNOWN,
    log: pino({ level: 'silent' }),
    metrics,
    pollMs: 20,
    ...o,
  });
  running.push(sync);
  return { haproxy, sync, desired, known, metrics };
}

const work = (ids: string[]) => ids.flatMap((id) => [certWork(id), mapWork(KNOWN, id)]);

/** Waits for `check`, polling every few ms; fails saying what it waited for. */
async function until(check: () => boolean, what: string, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`waited ${ms} ms for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** `p`, or a failure saying what did not happen within `ms`. */
async function within<T>(p: Promise<T>, what: string, ms = 3_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not within ${ms} ms: ${what}`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** A promise and its resolve/reject, to hold a push or a reload. */
function held<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe('InstanceSync against an in-memory instance', () => {
  test('settle: a sync resolves once the certificates and their known.map names are served', async () => {
    const { haproxy, sync } = setup(['a.test', 'b.test']);
    sync.start();
    await within(sync.sync(work(['_default', 'a.test', 'b.test'])), 'the first sync');
    assert.deepEqual([...haproxy.certs.keys()].sort(), ['/certs/_default.pem', '/certs/a.test.pem', '/certs/b.test.pem']);
    assert.deepEqual([...haproxy.maps.get(KNOWN)!].sort(), [['a.test', 'a.test'], ['b.test', 'b.test']]);
    assert.equal(sync.serves('a.test'), true);
    const { commands, lastReconcile, reconciles, reconcilesUnchanged, ...status } = sync.status();
    assert.deepEqual({ ...status, lastError: undefined, lastErrorAt: undefined, pid: undefined }, {
      name: 'mem', runtime: undefined, state: 'up', pid: undefined, lastError: undefined, lastErrorAt: undefined, inSync: 2, missing: 0, stale: 0, pending: 0,
    });
    assert.equal(commands, haproxy.calls.length);
    assert.equal(lastReconcile?.certsRead, 0, 'a fresh instance lists nothing of ours: nothing to read one by one');
    assert.equal(reconciles, 1);
  });

  test('a fresh instance brought in sync logs one "in sync" line with what it pushed and how long it took', async () => {
    const lines: { msg: string; changes?: number; serving?: number; ms?: number }[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const { sync } = setup(['a.test', 'b.test', 'c.test'], { log });
    sync.start();
    await within(sync.sync(work(['_default', 'a.test', 'b.test', 'c.test'])), 'the first sync');
    await until(() => lines.some((l) => l.msg === 'in sync'), 'the "in sync" line');
    const done = lines.filter((l) => l.msg === 'in sync');
    assert.equal(done.length, 1);
    assert.deepEqual({ changes: done[0]!.changes, serving: done[0]!.serving }, { changes: 4, serving: 4 });
    assert.equal(typeof done[0]!.ms, 'number');
    await sync.sync([certWork('a.test')]);
    assert.equal(lines.filter((l) => l.msg === 'in sync').length, 1, 'a later single push logs no second line');
  });

  test('settle: a small waiter is answered after its own push, not after the rest of the batch', async () => {
    const { haproxy, sync, desired } = setup([]);
    sync.start();
    await sync.sync([certWork('_default')]);
    const slow = held();
    haproxy.holds.set('/certs/z.test.pem', slow.promise);
    for (const id of ['a.test', 'z.test']) desired.set(id, memoryEntry(id));
    const a = sync.sync([certWork('a.test')]);
    const z = sync.sync([certWork('z.test')]);
    await within(a, 'a.test answered while z.test is still held');
    assert.equal(sync.serves('z.test'), false, 'z.test is still being pushed');
    slow.resolve();
    await z;
    assert.equal(sync.serves('z.test'), true);
  });

  test('refusal: the others are served, the refused one is reported and kept out of known.map, then retried', async () => {
    const { haproxy, sync } = setup(['big.test', 'ok.test']);
    haproxy.refuse.set('/certs/big.test.pem', new HaproxyCommandError('haproxy: `set ssl cert`: the PEM does not fit one CLI buffer'));
    sync.start();
    const ok = sync.sync(work(['ok.test']));
    const big = sync.sync(work(['big.test']));
    await within(ok, 'ok.test answered beside the refused one');
    await assert.rejects(big, (err: Error) => err instanceof HaproxyCommandError && /cannot load it at runtime: .*CLI buffer \(set a master socket/.test(err.message));
    assert.equal(sync.status().state, 'up', 'a refusal is not an outage');
    assert.equal(haproxy.maps.get(KNOWN)!.has('ok.test'), true);
    assert.equal(haproxy.maps.get(KNOWN)!.has('big.test'), false, 'its handshakes must still reach the daemon');
    haproxy.refuse.clear();
    sync.requestReconcile();
    await until(() => sync.serves('big.test') && haproxy.maps.get(KNOWN)!.has('big.test'), 'the refused certificate retried at the next reconcile');
  });

  test('reload fallback: once per certificate version; its waiters wait for the outcome', async () => {
    const reloads: string[] = [];
    let next = held();
    const reload: InstanceReload = { request: (reason) => (reloads.push(reason), next.promise) };
    const filesDone = held();
    const { haproxy, sync, desired } = setup(['big.test'], { reload, filesWritten: () => filesDone.promise });
    haproxy.refuse.set('/certs/big.test.pem', new HaproxyCommandError('too large'));
    sync.start();
    let settled = false;
    const first = sync.sync([certWork('big.test')]).finally(() => (settled = true));
    first.catch(() => {});
    await until(() => haproxy.calls.includes('putCert'), 'the first push');
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(reloads, [], 'the reload waits for the file writes');
    filesDone.resolve();
    await until(() => reloads.length === 1, 'the reload request');
    assert.match(reloads[0]!, /^big\.test: too large/);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(settled, false, 'waiters wait for the reload');

    // The reload did not help (the files hold the same PEM): refused for good, no second reload.
    next.resolve();
    await assert.rejects(first, /a reload did not load it either: too large/);
    await assert.rejects(sync.sync([certWork('big.test')]), /a reload did not load it either/);
    assert.equal(reloads.length, 1);

    // A new version gets one reload of its own; a failed reload is reported.
    next = held();
    desired.set('big.test', memoryEntry('big.test', 2));
    const second = sync.sync([certWork('big.test')]);
    await until(() => reloads.length === 2, 'the reload for version 2');
    next.reject(new Error('the master said no'));
    await assert.rejects(second, /and the reload failed: the master said no/);
  });

  test('reloadFromFiles (a new forge intermediate): the file writes first, then the reload, then the new worker is learnt', async () => {
    const reloads: string[] = [];
    const reload: InstanceReload = { request: async (reason) => void reloads.push(reason) };
    const filesDone = held();
    const { haproxy, sync } = setup(['a.test'], { reload, filesWritten: () => filesDone.promise });
    sync.start();
    await sync.sync(work(['a.test']));
    const reconciles = haproxy.calls.filter((c) => c === 'showSslCerts').length;
    const reloaded = sync.reloadFromFiles('a new intermediate');
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(reloads, [], 'no reload before the list files are written');
    filesDone.resolve();
    assert.equal(await reloaded, true);
    assert.deepEqual(reloads, ['a new intermediate']);
    await until(() => haproxy.calls.filter((c) => c === 'showSslCerts').length > reconciles, 'a reconcile of the reloaded instance');
    const { sync: noMaster } = setup(['a.test']);
    assert.equal(await noMaster.reloadFromFiles('a new intermediate'), false);
  });

  test('misconfigured: no bind loads the crt-list; repaired once one does', async () => {
    const haproxy = new MemoryInstance();
    haproxy.loadsCrtList = false;
    const { sync } = setup(['a.test'], {}, haproxy);
    sync.start();
    await assert.rejects(sync.sync(work(['a.test'])), HaproxyMisconfiguredError);
    assert.equal(sync.status().state, 'misconfigured');
    assert.match(sync.status().lastError ?? '', /no bind line of its config loads the crt-list \/certs\/crt-list\.txt/);
    haproxy.loadsCrtList = true;
    await until(() => sync.status().state === 'up' && sync.serves('a.test'), 'the retry after the config was fixed');
  });

  test('down → up: callers hear the outage at once; the instance is repaired when it answers again; a restart is re-pushed', async () => {
    const haproxy = new MemoryInstance();
    haproxy.down = new HaproxyUnreachableError('connect ECONNREFUSED');
    const { sync, metrics } = setup(['a.test'], {}, haproxy);
    sync.start();
    await assert.rejects(sync.sync(work(['a.test'])), HaproxyUnreachableError);
    assert.equal(sync.status().state, 'down');
    assert.equal(metrics.up.at(-1), false);
    assert.ok(metrics.errors >= 1);
    haproxy.down = undefined;
    await until(() => sync.status().state === 'up' && sync.serves('a.test'), 'the repair after the outage');
    assert.equal(sync.status().lastError, undefined);
    assert.equal(metrics.up.at(-1), true);

    haproxy.restart();
    await until(() => haproxy.certs.has('/certs/a.test.pem') && haproxy.maps.get(KNOWN)!.has('a.test'), 'the re-push after a restart (new pid)');
  });

  test('a new socket file at a unix runtime address ends the retry backoff at once: a fresh instance is synced without waiting it out', async () => {
    const socket = join(tempDir('certd-socket-watch-'), 'admin.sock');
    const haproxy = new MemoryInstance();
    haproxy.down = new HaproxyUnreachableError('connect ENOENT');
    const { sync } = setup(['a.test'], { runtime: `unix:${socket}` }, haproxy);
    sync.start();
    // Down long enough for the backoff to reach its 5 s cap (200 + 400 + … ms).
    await new Promise((r) => setTimeout(r, 4_000));
    assert.equal(sync.status().state, 'down');
    haproxy.down = undefined;
    const appeared = performance.now();
    await writeFile(socket, '');
    await until(() => sync.serves('a.test'), 'the sync after the socket appeared (the backoff alone would wait ~2 s more)', 1_500);
    assert.ok(performance.now() - appeared < 1_500, 'well before the backoff ends');
  });

  test('down: later callers are told at once, without waiting for connect retries; the work is pushed when it answers', async () => {
    const haproxy = new MemoryInstance();
    haproxy.down = new HaproxyUnreachableError('down');
    const { sync } = setup(['a.test'], {}, haproxy);
    sync.start();
    await assert.rejects(sync.sync([certWork('a.test')]), HaproxyUnreachableError);
    const t0 = performance.now();
    await assert.rejects(sync.sync([certWork('a.test')]), HaproxyUnreachableError);
    assert.ok(performance.now() - t0 < 50, 'the second caller did not wait for a retry');
    haproxy.down = undefined;
    await until(() => sync.serves('a.test'), 'the push once the instance answers again');
  });

  test('stop: closes the client and rejects the waiters left', async () => {
    const { haproxy, sync, desired } = setup([]);
    sync.start();
    await sync.sync([certWork('_default')]);
    const slow = held();
    haproxy.holds.set('/certs/a.test.pem', slow.promise);
    for (const id of ['a.test', 'b.test']) desired.set(id, memoryEntry(id));
    const first = sync.sync([certWork('a.test')]);
    await until(() => haproxy.calls.includes('putCert'), 'the held push');
    const waiting = sync.sync([certWork('b.test')]);
    const stopping = running.splice(0).at(0)!.stop();
    slow.resolve();
    await first;
    await stopping;
    await assert.rejects(waiting, { code: 'CERTD_E_STOPPED' });
    assert.equal(haproxy.closed, true);
  });
});

describe('InstanceSync backoff (mocked clock)', () => {
  afterEach(() => mock.timers.reset());

  test('retries at 200 ms doubling up to 5 s; a success starts again at 200 ms', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 0 });
    const haproxy = new MemoryInstance();
    haproxy.down = new HaproxyUnreachableError('down');
    const tries: number[] = [];
    const showInfo = haproxy.showInfo.bind(haproxy);
    haproxy.showInfo = () => (tries.push(Date.now()), showInfo());
    const { sync } = setup([], { pollMs: 60_000 }, haproxy);
    const flush = async () => {
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    };
    /** Moves the clock `ms` and says whether exactly then (not 1 ms before) one more try was made. */
    const triedAfter = async (ms: number) => {
      const before = tries.length;
      mock.timers.tick(ms - 1);
      await flush();
      const early = tries.length !== before;
      mock.timers.tick(1);
      await flush();
      return !early && tries.length === before + 1;
    };
    sync.start();
    await flush();
    assert.equal(tries.length, 1);
    for (const gap of [200, 400, 800, 1_600, 3_200, 5_000, 5_000]) assert.ok(await triedAfter(gap), `a retry ${gap} ms after the last`);
    haproxy.down = undefined;
    mock.timers.tick(5_000);
    await flush();
    assert.equal(sync.status().state, 'up');
    haproxy.down = new HaproxyUnreachableError('down again');
    sync.requestReconcile();
    await flush();
    assert.equal(sync.status().state, 'down');
    assert.ok(await triedAfter(200), 'after a success the first retry is 200 ms later');
  });
});

describe('Deployer with a client factory', () => {
  test('each instance gets its client from the factory; files first, then the push; stop closes them', async () => {
    const certDir = tempDir('certd-deployer-unit-');
    const crtList = join(certDir, 'crt-list.txt');
    const made = new Map<string, MemoryInstance>();
    const deployer = new Deployer({
      certDir,
      crtList,
      instances: [{ runtime: 'unix:/run/a.sock' }, { runtime: 'unix:/run/b.sock', name: 'edge-b' }],
      defaultEntry: memoryEntry('_default', 1, certDir),
      log: pino({ level: 'silent' }),
      connect: (runtime) => {
        const haproxy = new MemoryInstance(crtList);
        haproxy.maps.set(join(certDir, 'known.map'), new Map());
        made.set(runtime, haproxy);
        return haproxy;
      },
    });
    assert.deepEqual([...made.keys()], ['unix:/run/a.sock', 'unix:/run/b.sock']);
    await deployer.start([]);
    try {
      const outcome = await deployer.upsert([memoryEntry('a.test', 1, certDir)]);
      assert.deepEqual([...outcome.ok].sort(), ['edge-b', 'haproxy-1']);
      assert.deepEqual(outcome.failed, []);
      for (const haproxy of made.values()) assert.equal(haproxy.certs.get(join(certDir, 'a.test.pem')), 'PEM A.TEST-V1');
      // The crt-list follows within its rewrite bound, off the answer path.
      await until(() => /a\.test\.pem a\.test\n/.test(readFileSync(crtList, 'utf8')), 'a.test in the crt-list file');
      assert.deepEqual(deployer.deployedOn('a.test').sort(), ['edge-b', 'haproxy-1']);
    } finally {
      await deployer.stop();
    }
    assert.ok([...made.values()].every((h) => h.closed));
  });
});

describe('Reconcile by digests (in-memory instance)', () => {
  test('a pass on the same worker sends the same few commands at 10 and at 300 certificates; after a restart every certificate is read', async () => {
    const perPass = async (n: number) => {
      const ids = Array.from({ length: n }, (_, i) => `c${i}.test`);
      const { haproxy, sync } = setup(ids);
      sync.start();
      await within(sync.sync(work(['_default', ...ids])), `the first sync of ${n}`);
      const first = sync.status().lastReconcile!;
      sync.requestReconcile();
      await until(() => sync.status().lastReconcile !== first, 'the periodic pass');
      const pass = sync.status().lastReconcile!;
      assert.equal(sync.status().inSync, n);
      haproxy.restart();
      const before = haproxy.certs.size;
      assert.equal(before, 0);
      await until(() => sync.status().lastReconcile?.at !== pass.at && sync.serves('c0.test') && haproxy.certs.size === n + 1, 'the re-push after the restart');
      return { pass, afterRestart: sync.status().lastReconcile! };
    };
    const small = await perPass(10);
    const large = await perPass(300);
    assert.equal(small.pass.certsRead, 0);
    assert.equal(large.pass.certsRead, 0, 'nothing drifted: no certificate read one by one');
    assert.equal(large.pass.commands, small.pass.commands, 'commands per pass do not grow with N');
    assert.ok(large.pass.commands <= 5, `${large.pass.commands} commands`);
  });

  test('an unchanged pass is not compared again; a reply that differs, a sync since, a restart or a new generation compare in full', async () => {
    let generation = 0;
    const { haproxy, sync } = setup(['a.test', 'b.test'], { generation: () => generation });
    sync.start();
    await within(sync.sync(work(['_default', 'a.test', 'b.test'])), 'the first sync');
    const pass = async (what: string) => {
      const before = sync.status().reconciles!;
      sync.requestReconcile();
      await until(() => sync.status().reconciles! > before && sync.status().pending === 0, what);
      return sync.status().lastReconcile!;
    };
    // The first pass after the pushes compares in full (work was taken since the last one).
    assert.equal((await pass('a pass after the pushes')).unchanged, false);
    const quiet = await pass('a quiet pass');
    assert.equal(quiet.unchanged, true);
    assert.equal(sync.status().reconcilesUnchanged, 1);
    // Behind our back: a crt-list line gone. Found by the next pass and put back.
    haproxy.lines = haproxy.lines.filter((l) => !l.path.endsWith('/a.test.pem'));
    assert.equal((await pass('the pass after a line was deleted')).unchanged, false);
    await until(() => haproxy.lines.some((l) => l.path.endsWith('/a.test.pem')), 'the line put back');
    assert.equal((await pass('the pass after the repair')).unchanged, false, 'the repair was a push: compared in full once more');
    assert.equal((await pass('quiet again')).unchanged, true);
    generation++;
    assert.equal((await pass('after a change of the expected state')).unchanged, false);
    await within(sync.sync([]), 'an empty sync');
    assert.equal((await pass('quiet after an empty sync')).unchanged, true);
    haproxy.restart();
    await until(() => sync.status().pid === haproxy.pid && haproxy.certs.size === 3, 'the re-push after the restart');
    assert.equal(sync.status().lastReconcile!.unchanged, false);
  });

  test('status keeps counting served certificates while a pass runs', async () => {
    const { haproxy, sync } = setup(['a.test', 'b.test']);
    sync.start();
    await within(sync.sync(work(['_default', 'a.test', 'b.test'])), 'the first sync');
    const gate = held();
    const showCrtList = haproxy.showCrtList.bind(haproxy);
    haproxy.showCrtList = async (list: string) => (await gate.promise, showCrtList(list));
    sync.requestReconcile();
    await until(() => haproxy.calls.filter((c) => c === 'showSslCerts').length >= 2, 'the pass under way');
    assert.equal(sync.status().inSync, 2, 'not cleared before the pass knows better');
    gate.resolve();
  });
});

describe('Deployer: files off the answer path, PEMs not kept in memory', () => {
  test('an upsert answers before the crt-list rewrite; the PEM is read back from disk for a restarted instance', async () => {
    const certDir = tempDir('certd-deployer-files-');
    const crtList = join(certDir, 'crt-list.txt');
    let haproxy!: MemoryInstance;
    const deployer = new Deployer({
      certDir,
      crtList,
      instances: [{ runtime: 'unix:/run/a.sock' }],
      defaultEntry: memoryEntry('_default', 1, certDir),
      log: pino({ level: 'silent' }),
      pollMs: 20,
      connect: () => {
        haproxy = new MemoryInstance(crtList);
        haproxy.maps.set(join(certDir, 'known.map'), new Map());
        return haproxy;
      },
    });
    await deployer.start([]);
    try {
      await deployer.upsert([memoryEntry('a.test', 1, certDir)]);
      assert.equal(await readFile(join(certDir, 'a.test.pem'), 'utf8'), 'PEM A.TEST-V1', 'the PEM is on disk when upsert answers');
      await until(() => readFileSync(crtList, 'utf8').includes('a.test.pem a.test') && readFileSync(join(certDir, 'known.map'), 'utf8').includes('a.test a.test'), 'the deferred rewrite of crt-list and known.map');
      // What the push after a restart sends is read from the file (the entry kept no PEM).
      await writeFile(join(certDir, 'a.test.pem'), 'PEM A.TEST-V1 (from disk)');
      haproxy.restart();
      await until(() => haproxy.certs.get(join(certDir, 'a.test.pem')) === 'PEM A.TEST-V1 (from disk)', 'the re-push read from disk');
    } finally {
      await deployer.stop();
    }
  });

  test('an instance catching up is pushed the names waiting handshakes asked for first (latest first), then the priority hint, then the rest', async () => {
    const certDir = tempDir('certd-deployer-rank-');
    const crtList = join(certDir, 'crt-list.txt');
    let h!: MemoryInstance;
    const deployer = new Deployer({
      certDir,
      crtList,
      instances: [{ runtime: 'unix:/run/rank.sock', name: 'a' }],
      defaultEntry: memoryEntry('_default', 1, certDir),
      log: pino({ level: 'silent' }),
      pollMs: 20,
      connect: () => (h = new MemoryInstance(crtList)),
    });
    const initial = Array.from({ length: 100 }, (_, i) => memoryEntry(`c${i}.test`, 1, certDir));
    await deployer.start(initial, { priority: ['c50.test', 'c7.test'] });
    try {
      await deployer.upsert([memoryEntry('asked1.test', 1, certDir)], { answerWhenServed: true });
      await deployer.upsert([memoryEntry('asked2.test', 1, certDir)], { answerWhenServed: true });
      await until(() => h.certs.size === 103, 'the first sync');
      h.restart();
      await until(() => h.certs.size === 103, 'the re-push after the restart');
      const order = [...h.certs.keys()].map((p) => p.slice(certDir.length + 1, -'.pem'.length));
      assert.deepEqual(order.slice(0, 4), ['asked2.test', 'asked1.test', 'c50.test', 'c7.test']);
    } finally {
      await deployer.stop();
    }
  });

  test('one of two instances down: an update answers without waiting for it, and names it', async () => {
    const certDir = tempDir('certd-deployer-down-');
    const crtList = join(certDir, 'crt-list.txt');
    const made: MemoryInstance[] = [];
    const deployer = new Deployer({
      certDir,
      crtList,
      instances: [{ runtime: 'unix:/run/a.sock', name: 'a' }, { runtime: 'unix:/run/b.sock', name: 'b' }],
      defaultEntry: memoryEntry('_default', 1, certDir),
      log: pino({ level: 'silent' }),
      connect: () => {
        const h = new MemoryInstance(crtList);
        made.push(h);
        return h;
      },
    });
    made[1]!.down = new HaproxyUnreachableError('connect ECONNREFUSED');
    await deployer.start([]);
    try {
      await deployer.upsert([memoryEntry('first.test', 1, certDir)]);
      const t0 = performance.now();
      const outcome = await deployer.upsert([memoryEntry('second.test', 1, certDir)]);
      assert.ok(performance.now() - t0 < 100, `answered in ${performance.now() - t0} ms`);
      assert.deepEqual(outcome.ok, ['a']);
      assert.deepEqual(outcome.failed.map((f) => f.instance), ['b']);
    } finally {
      await deployer.stop();
    }
  });
});
