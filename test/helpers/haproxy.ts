import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManagedHaproxy } from '../../src/haproxy/managed/managed-haproxy.js';
import { freePort } from './ports.js';
import { makeCert, type TestCert } from './tls.js';
import { TrackedHaproxy } from './children.js';

/**
 * The HAProxy branch the suite runs against: scripts/test.sh sets CERTD_HAPROXY_VERSION beside
 * CERTD_HAPROXY_BIN for 3.0 and 3.2; unset means Debian 12's 2.6. Tests that pin a version's
 * exact replies branch on it, and `show info` is checked against it.
 */
export const HAPROXY_UNDER_TEST: '2.6' | '3.0' | '3.2' = (() => {
  const v = process.env.CERTD_HAPROXY_VERSION ?? '2.6';
  if (v !== '2.6' && v !== '3.0' && v !== '3.2') throw new Error(`CERTD_HAPROXY_VERSION=${v}: expected 2.6, 3.0 or 3.2`);
  return v;
})();

export interface TestHaproxy {
  dir: string;
  /** `unix:<dir>/admin.sock` (level admin). */
  runtime: string;
  adminSocket: string;
  /** `tcp:127.0.0.1:<port>` when started with `tcpRuntime`. */
  tcpRuntime?: string;
  masterSocket: string;
  /** The TLS listener on 127.0.0.1, `mode http`, answering "ok". */
  tlsPort: number;
  crtList: string;
  /** A map file the config references, so `add/set/del map` work on it. */
  map: string;
  /** First line of the crt-list: served to names nothing else matches. */
  defaultCert: TestCert;
  haproxy: ManagedHaproxy;
  configFile: string;
  /** Stops HAProxy and removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts a real HAProxy (master-worker, via ManagedHaproxy) in a fresh temp dir: a `stats socket`
 * at level admin (plus a loopback TCP one with `tcpRuntime`), and an `ssl crt-list` listener on a
 * free loopback port whose crt-list holds one self-signed default certificate (HAProxy needs one
 * to start). Call `stop()` in teardown.
 */
export async function startHaproxy(opts: { tcpRuntime?: boolean } = {}): Promise<TestHaproxy> {
  const dir = await mkdtemp(join(tmpdir(), 'certd-haproxy-'));
  const adminSocket = join(dir, 'admin.sock');
  const masterSocket = join(dir, 'master.sock');
  const crtList = join(dir, 'crt-list.txt');
  const map = join(dir, 'known.map');
  const defaultPem = join(dir, 'default.pem');
  const tlsPort = await freePort();
  const tcpPort = opts.tcpRuntime ? await freePort() : undefined;
  const defaultCert = await makeCert('default.invalid', 30);
  await writeFile(defaultPem, defaultCert.pem, { mode: 0o600 });
  await writeFile(crtList, `${defaultPem}\n`);
  await writeFile(map, '');
  const configFile = join(dir, 'haproxy.cfg');
  await writeFile(
    configFile,
    [
      'global',
      `  stats socket ${adminSocket} mode 600 level admin`,
      ...(tcpPort ? [`  stats socket ipv4@127.0.0.1:${tcpPort} level admin`] : []),
      '  nbthread 2',
      'defaults',
      '  mode http',
      '  timeout connect 5s',
      '  timeout client 10s',
      '  timeout server 10s',
      'frontend tls',
      `  bind 127.0.0.1:${tlsPort} ssl crt-list ${crtList}`,
      `  http-request set-var(txn.known) req.hdr(host),map(${map})`,
      '  http-request return status 200 content-type text/plain lf-string "ok"',
      '',
    ].join('\n'),
  );
  const haproxy = new TrackedHaproxy({ configFile, masterSocket, runtimeSocket: adminSocket });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await haproxy.stop().catch(() => haproxy.kill());
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await haproxy.start();
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    dir,
    runtime: `unix:${adminSocket}`,
    adminSocket,
    tcpRuntime: tcpPort ? `tcp:127.0.0.1:${tcpPort}` : undefined,
    masterSocket,
    tlsPort,
    crtList,
    map,
    defaultCert,
    haproxy,
    configFile,
    stop,
  };
}
