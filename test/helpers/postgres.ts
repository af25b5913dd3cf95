import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { killedAtExit } from './children.js';
import { freePort } from './ports.js';

const run = promisify(execFile);

/** Debian 12's PostgreSQL (the `postgresql` package, installed by scripts/bootstrap.sh). */
export const PG_BIN = process.env.CERTD_PG_BIN ?? '/usr/lib/postgresql/15/bin';
/** initdb + first start of a fresh cluster: a second or two here, far more on a loaded machine. */
const START_WAIT_MS = 120_000;
const STOP_WAIT_MS = 30_000;

/** A private PostgreSQL server for one test file: its own data dir, a free loopback port. */
export interface Postgres {
  /** postgres://certd@127.0.0.1:<port>/certd (trust auth on loopback: a test server only). */
  url: string;
  port: number;
  dataDir: string;
  /** Stops the server (fast shutdown); `start()` brings it back on the same port and data (a no-op while it runs). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Kills the server with SIGKILL (a crash), then waits for it to be gone. */
  kill(): Promise<void>;
  /** Runs SQL through psql as the superuser; returns its stdout. */
  psql(sql: string): Promise<string>;
  /** Stops it and removes the data dir: call on every exit path. */
  destroy(): Promise<void>;
}

/**
 * The uid/gid the server runs as: PostgreSQL refuses to run as root (CI runs as root), so then it
 * runs as Debian's `postgres` system user; as anyone else, as that user.
 */
async function serverUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const line = (await readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('running as root needs the `postgres` system user (Debian package postgresql): run scripts/bootstrap.sh with CERTD_BOOTSTRAP_TEST=1');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** initdb into a new temp dir, then starts the server on 127.0.0.1:<free port> with database `certd`. */
export async function startPostgres(): Promise<Postgres> {
  const root = await mkdtemp(join(tmpdir(), 'certd-pg-'));
  const dataDir = join(root, 'data');
  const user = await serverUser();
  if (user) await chown(root, user.uid, user.gid);
  const asServer = user ? { uid: user.uid, gid: user.gid } : {};
  await run(join(PG_BIN, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'], { ...asServer, timeout: START_WAIT_MS });
  const port = await freePort();
  let server: ChildProcess | undefined;

  const pg: Postgres = {
    url: `postgres://certd@127.0.0.1:${port}/certd`,
    port,
    dataDir,
    async start() {
      if (server && server.exitCode === null && server.signalCode === null) return;
      // Loopback TCP only; the unix socket in the data dir, not /var/run (owned by the system service).
      const child = spawn(join(PG_BIN, 'postgres'), ['-D', dataDir, '-h', '127.0.0.1', '-p', String(port), '-k', root, '-c', 'fsync=off', '-c', 'max_connections=200'], {
        ...asServer,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      killedAtExit(child);
      let log = '';
      child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4_000)));
      server = child;
      const deadline = performance.now() + START_WAIT_MS;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`postgres exited (${child.exitCode}) while starting: ${log}`);
        const ready = await run(join(PG_BIN, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-t', '2']).then(
          () => true,
          () => false,
        );
        if (ready) return;
        if (performance.now() > deadline) throw new Error(`postgres did not accept connections on 127.0.0.1:${port} within ${START_WAIT_MS} ms: ${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      await signal('SIGINT');
    },
    async kill() {
      await signal('SIGKILL');
    },
    async psql(sql: string) {
      const { stdout } = await run(join(PG_BIN, 'psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
      return stdout;
    },
    async destroy() {
      await pg.stop().catch(() => pg.kill());
      await rm(root, { recursive: true, force: true });
    },
  };

  /** SIGINT = PostgreSQL's fast shutdown. Waits for the process to be gone, SIGKILL after STOP_WAIT_MS. */
  async function signal(sig: NodeJS.Signals): Promise<void> {
    const child = server;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill(sig);
    const forced = setTimeout(() => child.kill('SIGKILL'), STOP_WAIT_MS);
    await exited;
    clearTimeout(forced);
  }

  try {
    await pg.start();
    await pg.psql('CREATE ROLE certd LOGIN');
    await pg.psql('CREATE DATABASE certd OWNER certd'); // not in one call: it cannot run in a transaction
  } catch (err) {
    await pg.destroy();
    throw err;
  }
  return pg;
}
