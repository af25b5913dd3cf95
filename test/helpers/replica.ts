import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { join } from 'node:path';
import { spawnCli } from './cli.js';
import { freePort } from './ports.js';
import type { TestHaproxy } from './haproxy.js';

/** One `haproxy-certd run` process on a postgres store, with its log collected. */
export interface Replica {
  name: string;
  child: ChildProcess;
  apiPort: number;
  configFile: string;
  /** Everything it logged so far (pino JSON lines on stderr). */
  log(): string;
  /** The `time` (epoch ms) of the first log line matching `re`, if any yet. */
  loggedAt(re: RegExp): number | undefined;
  exited: Promise<number | null>;
}

export const TEST_TOKEN = 'ha-test-token-0123456789';

export interface ReplicaOptions {
  dir: string;
  url: string;
  /** The one instance (`h1`) and the crt-list it loads. */
  haproxy: Pick<TestHaproxy, 'crtList' | 'runtime'>;
  /** Instead of `haproxy`'s one: several instances by name (all loading haproxy.crtList). */
  instances?: { name: string; runtime: string }[];
  /** Extra keys of `store:` (YAML flow mapping body), e.g. `lease: 5s`. */
  store?: string;
  /** Names configured under certificates (issued by the local CA "internal"). */
  names?: string[];
  /** More top-level config lines (YAML), e.g. an `onDemand:` section. */
  extra?: string[];
  /** The API port (default: a free one). */
  apiPort?: number;
}

/**
 * Starts a replica in `dir` (config `<name>.yaml`, dataDir `data-<name>`): the postgres store at
 * `url` with `dir/store.key`, the shared certDir `dir/certs`, the one HAProxy given, its API on a
 * free loopback port. Every replica's config differs only in api.listen and dataDir.
 */
export async function startReplica(name: string, o: ReplicaOptions): Promise<Replica> {
  const apiPort = o.apiPort ?? (await freePort());
  const configFile = join(o.dir, `${name}.yaml`);
  await writeFile(
    configFile,
    [
      `dataDir: ./data-${name}`,
      `store: { type: postgres, url: "${o.url}", keyFile: ./store.key, sslmode: disable${o.store ? `, ${o.store}` : ''} }`,
      `haproxy: { certDir: ./certs, crtList: "${o.haproxy.crtList}", instances: [ ${(o.instances ?? [{ name: 'h1', runtime: o.haproxy.runtime }]).map((i) => `{ runtime: "${i.runtime}", name: ${i.name} }`).join(', ')} ] }`,
      `api: { listen: "127.0.0.1:${apiPort}", token: ${TEST_TOKEN} }`,
      'issuers: { internal: { type: local-ca } }',
      `certificates: [ ${(o.names ?? []).map((n) => `{ names: [ ${n} ], issuer: internal }`).join(', ')} ]`,
      ...(o.extra ?? []),
      '',
    ].join('\n'),
  );
  const child = spawnCli(['--config', configFile, 'run'], { cwd: o.dir });
  let text = '';
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return {
    name,
    child,
    apiPort,
    configFile,
    log: () => text,
    loggedAt(re) {
      for (const line of text.split('\n')) {
        if (!re.test(line)) continue;
        try {
          return (JSON.parse(line) as { time: number }).time;
        } catch {
          return undefined;
        }
      }
      return undefined;
    },
    exited,
  };
}

/** A loopback TCP proxy to PostgreSQL that can be cut: a network partition of whoever connects through it. */
export interface CuttableLink {
  port: number;
  /** From now on nothing passes, either way, on old or new connections (packets dropped, not refused). */
  cut(): void;
  close(): Promise<void>;
}

export async function cuttableLink(targetPort: number): Promise<CuttableLink> {
  let cut = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (cut) return client.pause();
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('data', (d) => void (cut || upstream.write(d)));
    upstream.on('data', (d) => void (cut || client.write(d)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    cut: () => void (cut = true),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/**
 * One runtime command as a recording proxy saw it: who sent it (the proxy's label), when, and the
 * fencing token of the instance's lease in the store when its connection was made (undefined:
 * nobody held the lease then).
 */
export interface RecordedCommand {
  by: string;
  at: number;
  command: string;
  token?: string;
}

const COMMAND = /^(show|set|new|commit|abort|add|del|prepare|clear) [a-z]/;

/**
 * A unix-socket proxy in front of an HAProxy runtime socket that records every command line sent
 * through it, labelled `by`: give each replica its own, and the log says which replica wrote what
 * when (the fencing check: no two replicas write in the same period).
 */
export async function recordingRuntime(
  target: string,
  path: string,
  by: string,
  log: RecordedCommand[],
  /** The lease's token now (read from the store's certd_locks): asked once per connection, before anything passes. */
  tokenNow?: () => Promise<string | undefined>,
): Promise<{ runtime: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    // Nothing reaches HAProxy before the token is known: the connection's commands carry it.
    client.pause();
    const upstream = connect(target);
    sockets.add(client).add(upstream);
    let pending = '';
    let token: string | undefined;
    client.on('data', (d) => {
      pending += d.toString('latin1');
      const lines = pending.split('\n');
      pending = lines.pop()!;
      // Command lines only: a `set ssl cert` payload's PEM lines (a private key) are not kept.
      for (const line of lines) for (const command of line.split(';')) if (COMMAND.test(command.trim())) log.push({ by, at: Date.now(), command: command.trim().slice(0, 120), token });
      upstream.write(d);
    });
    void (tokenNow?.() ?? Promise.resolve(undefined)).then(
      (t) => {
        token = t;
        client.resume();
      },
      () => client.resume(),
    );
    upstream.on('data', (d) => client.write(d));
    for (const s of [client, upstream]) {
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    runtime: `unix:${path}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** The fencing token of `key`'s unexpired lease in the store at `url`, read per call (a small pool). */
export function leaseTokens(url: string, key: string): { now(): Promise<string | undefined>; close(): Promise<void> } {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => undefined);
  return {
    now: async () => (await pool.query<{ token: string }>('SELECT token FROM certd_locks WHERE key = $1 AND expires_at > now()', [key])).rows[0]?.token,
    close: () => pool.end(),
  };
}

/**
 * The fencing check on a command record (in the order sent): every command carries the token of
 * the lease held when its connection opened; each token is one replica's, and tokens never go
 * back (a fenced replica writing on would show its old token after a newer one, or its name
 * under the newer token). Returns the tokens in order with who used them, for the log.
 */
export function assertFenced(commands: readonly RecordedCommand[]): { token: string; by: string; commands: number }[] {
  const periods: { token: string; by: string; commands: number }[] = [];
  for (const [i, c] of commands.entries()) {
    if (c.token === undefined) throw new Error(`command ${i} (${c.command}) by ${c.by} at ${c.at} was sent while nobody held the lease`);
    const last = periods.at(-1);
    if (last && last.token === c.token) {
      if (last.by !== c.by) throw new Error(`token ${c.token} used by two replicas: ${last.by} and ${c.by} (command ${i}: ${c.command})`);
      last.commands++;
      continue;
    }
    if (last && BigInt(c.token) < BigInt(last.token)) throw new Error(`token went back from ${last.token} to ${c.token} (${c.by}, command ${i}: ${c.command})`);
    if (periods.some((p) => p.token === c.token)) throw new Error(`token ${c.token} came back after ${last!.token}`);
    periods.push({ token: c.token, by: c.by, commands: 1 });
  }
  return periods;
}
