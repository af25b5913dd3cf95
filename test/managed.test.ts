/* ManagedHaproxy: start, stop, kill, restart, reload of a real `haproxy -W`, and failed starts. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { HaproxyUnreachableError } from '../src/core/errors.js';
import { HaproxyStartError, ManagedHaproxy } from '../src/haproxy/managed/managed-haproxy.js';
import { RuntimeClient } from '../src/haproxy/runtime/client.js';
import { startHaproxy } from './helpers/haproxy.js';
import { handshake, makeCert } from './helpers/tls.js';
import { isAlive } from './helpers/children.js';


describe('ManagedHaproxy', () => {
  it('start, stop, kill, restart, reload: worker pids change, runtime state does not survive', async () => {
    const h = await startHaproxy();
    const client = new RuntimeClient(h.runtime, { connectAttempts: 1 });
    try {
      const first = await h.haproxy.workerPid();
      assert.equal((await client.showInfo()).pid, first);
      assert.ok(h.haproxy.running);
      assert.ok(h.haproxy.output().some((l) => /Loading success/.test(l)));

      const cert = await makeCert('managed.test');
      await client.putCert('/v/managed.pem', cert.pem);
      await client.addCrtListEntry(h.crtList, { path: '/v/managed.pem', sni: ['managed.test'] });
      assert.equal((await handshake(h.tlsPort, 'managed.test')).serial, cert.serial);

      // Reload (SIGUSR2): a new worker from the files, without what was added at runtime.
      const reloaded = await h.haproxy.reload();
      assert.notEqual(reloaded, first);
      assert.equal((await client.showInfo()).pid, reloaded);
      assert.equal((await handshake(h.tlsPort, 'managed.test')).serial, h.defaultCert.serial);

      const master = h.haproxy.masterPid!;
      await h.haproxy.kill();
      assert.equal(h.haproxy.running, false);
      assert.equal(h.haproxy.masterPid, undefined);
      assert.equal(isAlive(master), false);
      await assert.rejects(client.showInfo(), HaproxyUnreachableError);
      await assert.rejects(h.haproxy.workerPid(), HaproxyUnreachableError);

      await h.haproxy.start();
      const afterKill = await h.haproxy.workerPid();
      assert.notEqual(afterKill, reloaded);
      assert.equal((await client.showInfo()).pid, afterKill);

      await h.haproxy.restart();
      const afterRestart = await h.haproxy.workerPid();
      assert.notEqual(afterRestart, afterKill);
      assert.equal((await client.showInfo()).pid, afterRestart);

      await h.haproxy.stop();
      assert.equal(h.haproxy.running, false);
      assert.equal(isAlive(afterRestart), false, 'the worker went with the master');
      await assert.rejects(client.showInfo(), HaproxyUnreachableError);
      await h.haproxy.stop();
    } finally {
      client.close();
      await h.stop();
    }
  });

  it('a failed start reports HAProxy\'s own error text', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'certd-managed-'));
    try {
      const haproxy = new ManagedHaproxy({
        configFile: join(dir, 'haproxy.cfg'),
        configText: 'global\n  bogus-keyword 1\n',
        masterSocket: join(dir, 'master.sock'),
        startTimeoutMs: 5_000,
      });
      await assert.rejects(haproxy.start(), (err: Error) => {
        assert.ok(err instanceof HaproxyStartError, err.message);
        assert.match(err.message, /unknown keyword 'bogus-keyword'/);
        return true;
      });
      assert.equal(haproxy.running, false);

      const missing = new ManagedHaproxy({ configFile: join(dir, 'haproxy.cfg'), masterSocket: join(dir, 'm.sock'), binary: join(dir, 'no-haproxy') });
      await assert.rejects(missing.start(), HaproxyStartError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a second start while running, and waits for the configured runtime socket', async () => {
    const h = await startHaproxy();
    try {
      await assert.rejects(h.haproxy.start(), HaproxyStartError);
      // The runtime socket named in the options answered during start: it answers now.
      const client = new RuntimeClient(h.runtime, { connectAttempts: 1 });
      assert.equal((await client.showInfo()).pid, await h.haproxy.workerPid());
      client.close();
    } finally {
      await h.stop();
    }
  });
});

describe('the HAProxy under test', () => {
  it("is the pid ManagedHaproxy started (the version matrix's launcher execs), and its mounts stay private", async () => {
    const h = await startHaproxy();
    try {
      // The master is the process we spawned: signals and exit codes reach HAProxy itself.
      const exe = await readlink(`/proc/${h.haproxy.masterPid}/exe`);
      assert.match(exe, /\/haproxy$/);
      // A 3.x chroot binds /tmp, /dev, /proc and the cwd inside its own mount namespace: none of it shows here.
      const mounts = await readFile('/proc/self/mountinfo', 'utf8');
      assert.doesNotMatch(mounts, /haproxy-certd\/(trixie|forky)/);
    } finally {
      await h.stop();
    }
  });
});
