/**
 * HAProxy 3.2's own ACME client as a benchmark peer (bench/acme.ts): one HAProxy with an `acme`
 * section (HTTP-01 answered from its `virt@acme` map), one `ssl-f-use … acme` line per name, each
 * starting from an expired self-signed certificate on disk (3.2 cannot start without one), and
 * `acme.scheduler off` so each order starts when the bench says `acme renew`.
 *
 * HAProxy 3.2's httpclient sends its POST bodies without a Content-Length, which Debian's Pebble
 * 2.4 refuses ("missing Content-Length header on POST", measured): a small HTTPS shim in front of
 * Pebble buffers each request and forwards it with one. Pebble builds its URLs from the Host
 * header, so every later request goes through the shim too. Its cost (~1 ms a request on
 * loopback) is inside the native column's times.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManagedHaproxy } from '../../src/haproxy/managed/managed-haproxy.js';
import { parseRuntimeAddress } from '../../src/haproxy/runtime/address.js';
import { RuntimeSession } from '../../src/haproxy/runtime/session.js';
import { selfSigned } from '../../test/helpers/certs.js';
import { freePort } from '../../test/helpers/ports.js';

export interface PebbleShim {
  /** Pebble's directory URL through the shim. */
  directoryUrl: string;
  close(): Promise<void>;
}

/** Starts the Content-Length shim on a free loopback port in front of Pebble's directory URL. */
export async function startPebbleShim(pebbleDirectoryUrl: string, pebbleTlsCaPem: string): Promise<PebbleShim> {
  const target = new URL(pebbleDirectoryUrl);
  const tls = await selfSigned('127.0.0.1');
  const server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const headers = { ...req.headers, 'content-length': String(body.length) };
      delete headers['transfer-encoding'];
      const upstream = request(
        { host: target.hostname, port: Number(target.port), method: req.method, path: req.url, headers, ca: pebbleTlsCaPem },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      upstream.on('error', (err) => res.writeHead(502).end(String(err)));
      upstream.end(body.length > 0 ? body : undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    directoryUrl: `https://127.0.0.1:${port}${target.pathname}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export interface NativeAcmeHaproxy {
  tlsPort: number;
  haproxy: ManagedHaproxy;
  /** The on-disk certificate path HAProxy knows each name by. */
  certPath(name: string): string;
  /** `acme renew` for each name, sent in one session; resolves when HAProxy has taken them. */
  renew(names: string[]): Promise<void>;
  /** `acme status`, by certificate path. */
  status(): Promise<Map<string, AcmeStatusRow>>;
  stop(): Promise<void>;
}

/** Starts HAProxy 3.2 (CERTD_HAPROXY_BIN) with ACME for `names` against `directoryUrl`. */
export async function startNativeAcme(o: { names: string[]; directoryUrl: string; httpPort: number; email: string }): Promise<NativeAcmeHaproxy> {
  const dir = await mkdtemp(join(tmpdir(), 'certd-bench-native-acme-'));
  const certPath = (name: string) => join(dir, `${name}.pem`);
  const expired = { notBefore: new Date(Date.now() - 2 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) };
  for (const name of o.names) await writeFile(certPath(name), (await selfSigned(name, expired)).pem, { mode: 0o600 });
  const tlsPort = await freePort();
  const adminSocket = join(dir, 'admin.sock');
  const configFile = join(dir, 'haproxy.cfg');
  await writeFile(
    configFile,
    [
      'global',
      '  expose-experimental-directives',
      `  stats socket ${adminSocket} mode 600 level admin`,
      '  acme.scheduler off',
      // The shim's certificate is self-signed: what is compared is the ACME flow, not the trust set-up.
      '  httpclient.ssl.verify none',
      'defaults',
      '  mode http',
      '  timeout connect 5s',
      '  timeout client 10s',
      '  timeout server 10s',
      'frontend acme_http',
      `  bind 127.0.0.1:${o.httpPort}`,
      `  http-request return status 200 content-type text/plain lf-string "%[path,field(-1,/)].%[path,field(-1,/),map(virt@acme)]" if { path_beg /.well-known/acme-challenge/ }`,
      'frontend tls',
      `  bind 127.0.0.1:${tlsPort} ssl`,
      ...o.names.map((name) => `  ssl-f-use crt "${certPath(name)}" acme bench domains "${name}"`),
      '  http-request return status 200 content-type text/plain lf-string "ok"',
      'acme bench',
      `  directory ${o.directoryUrl}`,
      `  account-key ${join(dir, 'account.key')}`,
      `  contact ${o.email}`,
      '  challenge http-01',
      '  keytype ECDSA',
      '  curves P-256',
      '  map virt@acme',
      '',
    ].join('\n'),
  );
  const haproxy = new ManagedHaproxy({ configFile, masterSocket: join(dir, 'master.sock'), runtimeSocket: adminSocket });
  const stop = async () => {
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
    tlsPort,
    haproxy,
    certPath,
    renew: async (names) => {
      const session = await RuntimeSession.open(parseRuntimeAddress(`unix:${adminSocket}`));
      try {
        for (const name of names) {
          const reply = await session.execute(`acme renew ${certPath(name)}`);
          if (reply !== '' && !/Starting update/i.test(reply)) throw new Error(`haproxy: acme renew ${name}: ${reply}`);
        }
      } finally {
        session.destroy();
      }
    },
    status: async () => {
      const session = await RuntimeSession.open(parseRuntimeAddress(`unix:${adminSocket}`));
      try {
        return parseAcmeStatus(await session.execute('acme status'));
      } finally {
        session.destroy();
      }
    },
    stop,
  };
}

/** One `acme status` row: the certificate's state and the notAfter HAProxy holds for it. */
export interface AcmeStatusRow {
  state: string;
  expires: string;
}

/** `acme status` (tab-separated, one row per certificate path) → path → state and notAfter. */
export function parseAcmeStatus(text: string): Map<string, AcmeStatusRow> {
  const rows = new Map<string, AcmeStatusRow>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const [path, , state, expires] = line.split('\t');
    if (path && state && expires) rows.set(path, { state, expires });
  }
  return rows;
}
