import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Dns01Solver, Http01Solver } from '../../src/issuers/acme/issuer.js';
import { freePort } from './ports.js';
import { killedAtExit, stopChild } from './children.js';

const run = promisify(execFile);

export interface PebbleOptions {
  /** The port Pebble's VA connects to for HTTP-01: where the test's responder listens. */
  httpPort: number;
  /** kid → base64url MAC key; makes external account binding required. */
  eab?: Record<string, string>;
  /** PEBBLE_WFE_NONCEREJECT (percent of good nonces rejected); Pebble's default 5 when unset. */
  nonceRejectPercent?: number;
  /** PEBBLE_ALTERNATE_ROOTS: extra roots, each offered as an alternate chain. */
  alternateRoots?: number;
  /** PEBBLE_AUTHZREUSE (percent); Pebble's default 50 when unset. */
  authzReusePercent?: number;
  /** Pebble's resolver instead of the private challtestsrv (e.g. a bind9 for RFC 2136 DNS-01). */
  dnsServer?: string;
  /** certificateValidityPeriod: short-lived certificates for renewal tests. */
  validitySeconds?: number;
}

export interface TestPebble {
  dir: string;
  directoryUrl: string;
  /** Pebble's own TLS certificate (self-signed): the caBundle for the ACME client. */
  tlsCaPem: string;
  /** The root that signs issued chains (management /roots/0). */
  rootPem: string;
  /** The management API base URL (https). */
  managementUrl: string;
  /** Fetches a root by index (0 = default chain, 1… = alternates). */
  root(index: number): Promise<string>;
  /** Publishes DNS-01 TXT records through pebble-challtestsrv, which Pebble uses as its resolver. */
  dns01Solver: Dns01Solver & { presented: number; cleaned: number };
  /** Simulates a CA outage: stops Pebble alone (it forgets its accounts, as a real reset would). */
  stopCa(): Promise<void>;
  /** Starts Pebble again on the same ports after stopCa(). */
  startCa(): Promise<void>;
  /** Stops Pebble and the DNS server, removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;

/**
 * Starts a private Pebble (real validation, PEBBLE_VA_NOSLEEP) and a private pebble-challtestsrv
 * as its DNS server answering 127.0.0.1 for every name, in a fresh temp dir, on free loopback ports.
 * Waits (bounded) until the directory answers. Call stop() in teardown.
 */
export async function startPebble(opts: PebbleOptions): Promise<TestPebble> {
  const dir = await mkdtemp(join(tmpdir(), 'certd-pebble-'));
  const children: ChildProcess[] = [];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all(children.map((c) => stopChild(c, 'SIGTERM', 3_000)));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const certFile = join(dir, 'tls.pem');
    const keyFile = join(dir, 'tls.key');
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=pebble test',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ]);
    const tlsCaPem = await readFile(certFile, 'utf8');

    const [dnsPort, dnsMgmtPort, listenPort, mgmtPort, tlsPort] = await Promise.all([
      freePort(), freePort(), freePort(), freePort(), freePort(),
    ]);
    const challtest = spawnLogged(
      'pebble-challtestsrv',
      [
        '-dns01', `127.0.0.1:${dnsPort}`,
        '-http01', '', '-https01', '', '-tlsalpn01', '',
        '-management', `127.0.0.1:${dnsMgmtPort}`,
        '-defaultIPv4', '127.0.0.1',
        // No AAAA answers: the test responders listen on 127.0.0.1 only.
        '-defaultIPv6', '',
      ],
      {},
    );
    children.push(challtest);
    const dnsMgmt = `http://127.0.0.1:${dnsMgmtPort}`;

    const configFile = join(dir, 'pebble.json');
    await writeFile(
      configFile,
      JSON.stringify({
        pebble: {
          listenAddress: `127.0.0.1:${listenPort}`,
          managementListenAddress: `127.0.0.1:${mgmtPort}`,
          certificate: certFile,
          privateKey: keyFile,
          httpPort: opts.httpPort,
          tlsPort,
          ocspResponderURL: '',
          externalAccountBindingRequired: opts.eab !== undefined,
          ...(opts.eab ? { externalAccountMACKeys: opts.eab } : {}),
          ...(opts.validitySeconds ? { certificateValidityPeriod: opts.validitySeconds } : {}),
        },
      }),
    );
    const env: Record<string, string> = { PEBBLE_VA_NOSLEEP: '1' };
    if (opts.nonceRejectPercent !== undefined) env.PEBBLE_WFE_NONCEREJECT = String(opts.nonceRejectPercent);
    if (opts.alternateRoots !== undefined) env.PEBBLE_ALTERNATE_ROOTS = String(opts.alternateRoots);
    if (opts.authzReusePercent !== undefined) env.PEBBLE_AUTHZREUSE = String(opts.authzReusePercent);
    const spawnPebble = () => {
      const child = spawnLogged('pebble', ['-config', configFile, '-dnsserver', opts.dnsServer ?? `127.0.0.1:${dnsPort}`], env);
      children.push(child);
      return child;
    };
    let pebble = spawnPebble();

    const directoryUrl = `https://127.0.0.1:${listenPort}/dir`;
    const managementUrl = `https://127.0.0.1:${mgmtPort}`;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    await waitFor(() => get(`${dnsMgmt}/`, tlsCaPem), deadline, children, dir);
    await waitFor(() => get(directoryUrl, tlsCaPem), deadline, children, dir);
    const root = async (index: number) => (await get(`${managementUrl}/roots/${index}`, tlsCaPem)).body;

    // challtestsrv clears every value of a host at once: keep a host's records until its last
    // user cleans up (a name and its wildcard share _acme-challenge.<name>).
    const users = new Map<string, number>();
    const dns01Solver = {
      presented: 0,
      cleaned: 0,
      async present(fqdn: string, txtValue: string) {
        dns01Solver.presented++;
        users.set(fqdn, (users.get(fqdn) ?? 0) + 1);
        await post(`${dnsMgmt}/set-txt`, { host: `${fqdn}.`, value: txtValue });
      },
      async cleanup(fqdn: string) {
        dns01Solver.cleaned++;
        const left = (users.get(fqdn) ?? 1) - 1;
        if (left > 0) {
          users.set(fqdn, left);
          return;
        }
        users.delete(fqdn);
        await post(`${dnsMgmt}/clear-txt`, { host: `${fqdn}.` });
      },
    };
    const stopCa = async () => {
      await stopChild(pebble, 'SIGTERM', 3_000);
      children.splice(children.indexOf(pebble), 1);
    };
    const startCa = async () => {
      pebble = spawnPebble();
      await waitFor(() => get(directoryUrl, tlsCaPem), Date.now() + READY_TIMEOUT_MS, children, dir);
    };
    return { dir, directoryUrl, tlsCaPem, rootPem: await root(0), managementUrl, root, dns01Solver, stopCa, startCa, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export interface Http01Responder {
  port: number;
  /** Token → key authorization, as present() stored it and cleanup() removes it. */
  tokens: Map<string, string>;
  solver: Http01Solver & { presented: number; cleaned: number };
  /** Answer this instead of the key authorization (to make validation fail). */
  answerOverride: string | undefined;
  stop(): Promise<void>;
}

/**
 * A tiny HTTP-01 responder on a free loopback port: serves /.well-known/acme-challenge/<token>
 * from what present() stored. Start it first and give its port to startPebble as httpPort.
 */
export async function startHttp01Responder(): Promise<Http01Responder> {
  const tokens = new Map<string, string>();
  const responder: Http01Responder = {
    port: 0,
    tokens,
    answerOverride: undefined,
    solver: {
      presented: 0,
      cleaned: 0,
      async present(token, keyAuthorization) {
        responder.solver.presented++;
        tokens.set(token, keyAuthorization);
      },
      async cleanup(token) {
        responder.solver.cleaned++;
        tokens.delete(token);
      },
    },
    stop: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server: Server = createServer((req, res) => {
    const m = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(req.url ?? '');
    const answer = m ? tokens.get(m[1]!) : undefined;
    if (answer === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end(responder.answerOverride ?? answer);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  responder.port = (server.address() as { port: number }).port;
  return responder;
}

/** Spawns a process keeping its output in memory, shown when a start fails. */
function spawnLogged(cmd: string, args: string[], env: Record<string, string>): ChildProcess {
  const child = killedAtExit(spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  const chunks: Buffer[] = [];
  const keep = (c: Buffer) => chunks.push(c);
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  (child as ChildProcess & { log: () => string }).log = () => Buffer.concat(chunks).toString('utf8');
  return child;
}

function logOf(child: ChildProcess): string {
  return (child as ChildProcess & { log?: () => string }).log?.() ?? '';
}

async function waitFor(check: () => Promise<unknown>, deadline: number, children: ChildProcess[], dir: string): Promise<void> {
  for (;;) {
    const dead = children.find((c) => c.exitCode !== null || c.signalCode !== null);
    if (dead) throw new Error(`${dead.spawnfile} exited during start (${dir}):\n${logOf(dead).slice(-2000)}`);
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) {
        throw new Error(`pebble not ready within ${READY_TIMEOUT_MS} ms: ${String(err)}\n${children.map(logOf).join('\n').slice(-2000)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function get(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, { ca, timeout: 2_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if ((res.statusCode ?? 500) >= 500) reject(new Error(`${url}: HTTP ${res.statusCode}`));
        else resolve({ status: res.statusCode!, body });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timeout`)));
    req.on('error', reject);
    req.end();
  });
}

function post(url: string, body: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', timeout: 2_000 }, (res) => {
      res.resume();
      res.on('end', () => ((res.statusCode ?? 500) < 300 ? resolve() : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timeout`)));
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

