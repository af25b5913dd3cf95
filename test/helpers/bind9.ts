import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import dnsPacket from 'dns-packet';
import { killedAtExit, stopChild } from './children.js';

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
  const port = await freeUdpTcpPort();
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
      'options {',
      `  directory "${dir}";`,
      `  pid-file "${join(dir, 'named.pid')}";`,
      `  session-keyfile "${join(dir, 'session.key')}";`,
      `  managed-keys-directory "${dir}";`,
      `  listen-on port ${port} { 127.0.0.1; };`,
      '  listen-on-v6 { none; };',
      '  recursion no;',
      '  notify no;',
      '  dnssec-validation no;',
      '  allow-query { any; };',
      '};',
      // An empty controls block: otherwise named opens rndc on the fixed port 953.
      'controls { };',
      ...Object.values(keys).map((k) => `key "${k.name}" { algorithm ${k.algorithm}; secret "${k.secret}"; };`),
      `zone "${ZONE}" { type primary; file "${join(dir, `${ZONE}.zone`)}";`,
      `  update-policy { grant ${keys.sha256.name} zonesub TXT A AAAA SRV; grant ${keys.sha512.name} zonesub TXT; }; };`,
      `zone "${DELEGATED}" { type primary; file "${join(dir, `${DELEGATED}.zone`)}";`,
      `  update-policy { grant ${keys.sha256.name} zonesub TXT; }; };`,
      '',
    ].join('\n'),
  );

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

  const deadline = Date.now() + (opts.startTimeoutMs ?? 15_000);
  try {
    for (;;) {
      if (spawnError) throw new Error(`cannot run named (apt-get install bind9): ${spawnError.message}`);
      if (child.exitCode !== null) throw new Error(`named exited with ${child.exitCode}:\n${stderr}`);
      if (await answersSoa(port, ZONE)) break;
      if (Date.now() > deadline) throw new Error(`named did not answer SOA ${ZONE} on port ${port} in time:\n${stderr}`);
      await sleep(50);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    dir,
    port,
    server: `127.0.0.1:${port}`,
    zone: ZONE,
    delegatedZone: DELEGATED,
    keys,
    log: () => stderr,
    stop,
  };
}

function zoneFile(origin: string): string {
  return [
    `$ORIGIN ${origin}.`,
    '$TTL 300',
    `@ IN SOA ns1.${ZONE}. hostmaster.${ZONE}. ( 1 3600 600 86400 60 )`,
    `@ IN NS ns1.${ZONE}.`,
    ...(origin === ZONE ? ['ns1 IN A 127.0.0.1', 'www IN A 127.0.0.1'] : []),
    '',
  ].join('\n');
}

/**
 * A port the kernel handed out for TCP on 127.0.0.1 that is also free for UDP (named needs
 * both); released for named to bind. Retries when the UDP side is taken.
 */
async function freeUdpTcpPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const tcp = createServer();
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(0, '127.0.0.1', resolve);
    });
    const { port } = tcp.address() as { port: number };
    const udp = createSocket('udp4');
    const udpFree = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, '127.0.0.1', () => resolve(true));
    });
    udp.close();
    await new Promise((resolve) => tcp.close(resolve));
    if (udpFree) return port;
  }
  throw new Error('no loopback port free for both UDP and TCP after 50 tries');
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
    sock.send(dnsPacket.encode({ type: 'query', id, questions: [{ type: 'SOA', name: zone }] }), port, '127.0.0.1');
    return await reply;
  } finally {
    sock.close();
  }
}

