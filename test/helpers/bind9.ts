import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import dnsPacket from 'dns-packet';
import { killedAtExit, stopChild } from './children.js';
import { freePort } from './ports.js';

/** A TSIG key as `issuers.*.dns.rfc2136.tsig` spells it in certd.yaml. */
export interface TestTsigKey {
  name: string;
  algorithm: 'hmac-sha256' | 'hmac-sha512';
  /** base64 */
  secret: string;
}

export interface TestBind9 {
  dir: string;
  port: number;
  /** `127.0.0.1:<port>`, the form `rfc2136.server` takes. */
  server: string;
  /** Primary zone; both `sha256` and `sha512` may update TXT records anywhere in it. */
  zone: string;
  /** A delegated `_acme-challenge.<name>` zone (apex updates allowed for `sha256`). */
  delegatedZone: string;
  keys: {
    sha256: TestTsigKey;
    sha512: TestTsigKey;
    /** Known to named but granted nothing: updates are REFUSED. */
    noGrant: TestTsigKey;
  };
  /** named's stderr so far, for assertion messages. */
  log(): string;
  /** Stops named and removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

const ZONE = 'example.test';
const DELEGATED = '_acme-challenge.delegated.test';

/**
 * Starts a private bind9 `named` in the foreground, as the current user, in a fresh temp dir that
 * holds everything it writes (config, zones, journals, pid, session key): loopback only, on a
 * port free for both UDP and TCP, no recursion, no rndc control channel. Resolves once it answers
 * a SOA query for the zone (bounded). Call `stop()` in teardown.
 */
export async function startBind9(opts: { startTimeoutMs?: number } = {}): Promise<TestBind9> {
  const dir = await mkdtemp(join(tmpdir(), 'certd-bind9-'));
  const port = await freePort({ udp: true });
  const keys = {
    sha256: { name: 'certd-key', algorithm: 'hmac-sha256', secret: randomBytes(32).toString('base64') },
    sha512: { name: 'certd-key-512', algorithm: 'hmac-sha512', secret: randomBytes(64).toString('base64') },
    noGrant: { name: 'certd-nogrant', algorithm: 'hmac-sha256', secret: randomBytes(32).toString('base64') },
  } satisfies Record<string, TestTsigKey>;
  const conf = join(dir, 'named.conf');
  await writeFile(join(dir, `${ZONE}.zone`), zoneFile(ZONE));
  await writeFile(join(dir, `${DELEGATED}.zone`), zoneFile(DELEGATED));
  await writeFile(
    conf,
    [
      ...namedOptions(dir, port, false),
      ...Object.values(keys).map((k) => `key "${k.name}" { algorithm ${k.algorithm}; secret "${k.secret}"; };`),
      `zone "${ZONE}" { type primary; file "${join(dir, `${ZONE}.zone`)}";`,
      `  update-policy { grant ${keys.sha256.name} zonesub TXT A AAAA SRV; grant ${keys.sha512.name} zonesub TXT; }; };`,
      `zone "${DELEGATED}" { type primary; file "${join(dir, `${DELEGATED}.zone`)}";`,
      `  update-policy { grant ${keys.sha256.name} zonesub TXT; }; };`,
      '',
    ].join('\n'),
  );

  const { stop, log } = await runNamed(dir, conf, port, ZONE, opts.startTimeoutMs);
  return {
    dir,
    port,
    server: `127.0.0.1:${port}`,
    zone: ZONE,
    delegatedZone: DELEGATED,
    keys,
    log,
    stop,
  };
}

/** One zone of a startBindServer server. */
export interface BindZone {
  name: string;
  /** Zone-file lines after SOA and NS (relative names), e.g. `_acme-challenge CNAME x.other.test.`. */
  records?: string[];
  /** The key that may update TXT records anywhere in the zone; none: the zone takes no updates. */
  updateKey?: TestTsigKey;
  /** A secondary of the primary on this port (which must allow it transfers; NOTIFY is off). */
  secondaryOfPort?: number;
  /** A forward zone to the server on this port (for a resolver). */
  forwardToPort?: number;
}

export interface TestBindServer {
  dir: string;
  port: number;
  /** `127.0.0.1:<port>`. */
  server: string;
  /** named.conf as written, so a test can show which keys it holds. */
  conf: string;
  /** Sends a NOTIFY for `zone` to this server (a secondary then transfers from its primary). */
  notify(zone: string): Promise<void>;
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts a private named with the given zones (primaries, secondaries of another test server,
 * or forwards when `recursion` makes it a resolver), in a fresh temp dir on a free loopback port.
 * Zones keep negative answers uncached (SOA minimum 0) and a resolver caches at most 1 s, so one
 * test's lookups do not hide the next one's records. NOTIFY is off: secondaries transfer only
 * when told (notify()). Resolves once it answers SOA for `readyZone` (default: the first zone).
 */
export async function startBindServer(opts: { zones: BindZone[]; recursion?: boolean; readyZone?: string; startTimeoutMs?: number }): Promise<TestBindServer> {
  const dir = await mkdtemp(join(tmpdir(), 'certd-bind9-'));
  const port = await freePort({ udp: true });
  const keys = new Map(opts.zones.flatMap((z) => (z.updateKey ? [[z.updateKey.name, z.updateKey] as const] : [])));
  const zones: string[] = [];
  for (const zone of opts.zones) {
    const file = join(dir, `${zone.name}.zone`);
    if (zone.forwardToPort !== undefined) {
      zones.push(`zone "${zone.name}" { type forward; forward only; forwarders { 127.0.0.1 port ${zone.forwardToPort}; }; };`);
    } else if (zone.secondaryOfPort !== undefined) {
      zones.push(`zone "${zone.name}" { type secondary; file "${file}"; primaries { 127.0.0.1 port ${zone.secondaryOfPort}; }; allow-notify { 127.0.0.1; }; };`);
    } else {
      await writeFile(file, zoneFile(zone.name, zone.records ?? []));
      const update = zone.updateKey ? ` update-policy { grant ${zone.updateKey.name} zonesub TXT; };` : '';
      zones.push(`zone "${zone.name}" { type primary; file "${file}"; allow-transfer { 127.0.0.1; };${update} };`);
    }
  }
  const conf = [
    ...namedOptions(dir, port, opts.recursion ?? false),
    ...[...keys.values()].map((k) => `key "${k.name}" { algorithm ${k.algorithm}; secret "${k.secret}"; };`),
    ...zones,
    '',
  ].join('\n');
  const confPath = join(dir, 'named.conf');
  await writeFile(confPath, conf);
  const { stop, log } = await runNamed(dir, confPath, port, opts.readyZone ?? opts.zones[0]!.name, opts.startTimeoutMs);
  return { dir, port, server: `127.0.0.1:${port}`, conf, notify: (zone) => sendNotify(port, zone), log, stop };
}

/**
 * named.conf's options: everything in `dir`, loopback `port` only, NOTIFY off, no rndc. A resolver
 * (`recursion`) caches at most 1 s.
 */
function namedOptions(dir: string, port: number, recursion: boolean): string[] {
  return [
    'options {',
    `  directory "${dir}";`,
    `  pid-file "${join(dir, 'named.pid')}";`,
    `  session-keyfile "${join(dir, 'session.key')}";`,
    `  managed-keys-directory "${dir}";`,
    `  listen-on port ${port} { 127.0.0.1; };`,
    '  listen-on-v6 { none; };',
    `  recursion ${recursion ? 'yes' : 'no'};`,
    ...(recursion ? ['  allow-recursion { 127.0.0.1; };', '  max-cache-ttl 1;', '  max-ncache-ttl 1;'] : []),
    '  notify no;',
    '  dnssec-validation no;',
    '  allow-query { any; };',
    '};',
    // An empty controls block: otherwise named opens rndc on the fixed port 953.
    'controls { };',
  ];
}

/** A new TSIG key (hmac-sha256) named `name`. */
export function tsigKey(name: string): TestTsigKey {
  return { name, algorithm: 'hmac-sha256', secret: randomBytes(32).toString('base64') };
}

/** An RFC 1996 NOTIFY for `zone`, sent once (named answers it; the answer is not needed). */
async function sendNotify(port: number, zone: string): Promise<void> {
  const sock = createSocket('udp4');
  const OPCODE_NOTIFY = 4 << 11;
  const msg = dnsPacket.encode({ type: 'query', id: randomBytes(2).readUInt16BE(0), flags: OPCODE_NOTIFY | dnsPacket.AUTHORITATIVE_ANSWER, questions: [{ type: 'SOA', name: zone }] });
  await new Promise<void>((resolve, reject) => sock.send(msg, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
  sock.close();
}

/** Runs named in the foreground on `conf`; resolves once it answers SOA `readyZone` (bounded). */
async function runNamed(dir: string, conf: string, port: number, readyZone: string, startTimeoutMs = 15_000): Promise<{ stop: () => Promise<void>; log: () => string }> {
  const named = existsSync('/usr/sbin/named') ? '/usr/sbin/named' : 'named';
  const child = killedAtExit(spawn(named, ['-g', '-4', '-c', conf, '-p', String(port)], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] }));
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-64_000);
  });
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + startTimeoutMs;
  try {
    for (;;) {
      if (spawnError) throw new Error(`cannot run named (apt-get install bind9): ${spawnError.message}`);
      if (child.exitCode !== null) throw new Error(`named exited with ${child.exitCode}:\n${stderr}`);
      if (await answersSoa(port, readyZone)) break;
      if (Date.now() > deadline) throw new Error(`named did not answer SOA ${readyZone} on port ${port} in time:\n${stderr}`);
      await sleep(50);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { stop, log: () => stderr };
}

function zoneFile(origin: string, records?: string[]): string {
  if (records === undefined) {
    return [
      `$ORIGIN ${origin}.`,
      '$TTL 300',
      `@ IN SOA ns1.${ZONE}. hostmaster.${ZONE}. ( 1 3600 600 86400 60 )`,
      `@ IN NS ns1.${ZONE}.`,
      ...(origin === ZONE ? ['ns1 IN A 127.0.0.1', 'www IN A 127.0.0.1'] : []),
      '',
    ].join('\n');
  }
  return [`$ORIGIN ${origin}.`, '$TTL 60', `@ IN SOA ns1 hostmaster ( 1 3600 600 86400 0 )`, '@ IN NS ns1', 'ns1 IN A 127.0.0.1', ...records, ''].join('\n');
}

/** One UDP SOA query with a short timeout; true when named answers NOERROR with an answer. */
async function answersSoa(port: number, zone: string): Promise<boolean> {
  const sock = createSocket('udp4');
  try {
    const id = randomBytes(2).readUInt16BE(0);
    const reply = new Promise<boolean>((resolve) => {
      sock.on('message', (msg) => {
        try {
          const res = dnsPacket.decode(msg);
          resolve(res.id === id && (msg.readUInt16BE(2) & 0xf) === 0 && (res.answers?.length ?? 0) > 0);
        } catch {
          resolve(false);
        }
      });
      sock.on('error', () => resolve(false));
      setTimeout(() => resolve(false), 300).unref();
    });
    sock.send(dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'SOA', name: zone }] }), port, '127.0.0.1');
    return await reply;
  } finally {
    sock.close();
  }
}

