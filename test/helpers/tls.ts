import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createSecureContext, type SecureContext } from 'node:tls';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCert {
  /** Certificate then key, as HAProxy wants it. */
  pem: string;
  certPem: string;
  keyPem: string;
  /** Lowercase hex, as handshake() and CertMeta report it. */
  serial: string;
}

/** A self-signed ECDSA P-256 certificate for `names` (first is the CN), made with the openssl CLI. */
export async function makeCert(names: string | string[], days = 2): Promise<TestCert> {
  const list = Array.isArray(names) ? names : [names];
  const dir = await mkdtemp(join(tmpdir(), 'certd-cert-'));
  try {
    const key = join(dir, 'key.pem');
    const crt = join(dir, 'crt.pem');
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', key, '-out', crt, '-days', String(days), '-subj', `/CN=${list[0]}`,
      '-addext', `subjectAltName=${list.map((n) => `DNS:${n}`).join(',')}`, '-addext', 'basicConstraints=critical,CA:FALSE',
    ]);
    const [certPem, keyPem] = await Promise.all([readFile(crt, 'utf8'), readFile(key, 'utf8')]);
    return { pem: certPem + keyPem, certPem, keyPem, serial: new X509Certificate(certPem).serialNumber.toLowerCase() };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface Served {
  /** Lowercase hex, as CertMeta.serial. */
  serial: string;
  /** Whether the chain verified against `ca` (false without one); see authorizationError. */
  authorized: boolean;
  authorizationError?: string;
  /** SAN DNS names of the certificate served. */
  san: string[];
  subject: string;
  /** The issuer's CN. */
  issuer: string;
  /** SHA-256 of the certificate's public key (tells a forged certificate's shared key from a real one's). */
  publicKeySha256: string;
  notBefore: Date;
  notAfter: Date;
  /** Negotiated ALPN protocol, or false. */
  alpn: string | false;
}

const contexts = new Map<string, SecureContext>();

/**
 * A client context, made once per trusted CA (or once with the default roots), as a real client
 * keeps one: building it costs ~1 ms (a new store, the CA PEM parsed), which a benchmark would
 * otherwise count in every handshake it times — and which spread 10 "simultaneous" first
 * handshakes over ~10 ms before any left the client.
 */
function contextTrusting(ca: string | undefined): SecureContext {
  const key = ca ?? '';
  let context = contexts.get(key);
  if (!context) {
    context = createSecureContext(ca === undefined ? {} : { ca });
    contexts.set(key, context);
  }
  return context;
}

/**
 * A TLS handshake with 127.0.0.1:`port` sending `servername` as SNI; resolves with what the
 * server presented. With `ca`, the result says whether the chain verified against it (an unverified
 * handshake is reported, not thrown, so tests can assert the default certificate was served).
 */
export function handshake(port: number, servername: string, opts: { ca?: string; alpn?: string[]; timeoutMs?: number } = {}): Promise<Served> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1',
      port,
      servername,
      secureContext: contextTrusting(opts.ca),
      rejectUnauthorized: false,
      ALPNProtocols: opts.alpn,
    });
    const timer = setTimeout(() => socket.destroy(new Error(`TLS handshake with ${servername} timed out`)), opts.timeoutMs ?? 5_000);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const peer = socket.getPeerCertificate();
      resolve({
        serial: peer.serialNumber.toLowerCase(),
        authorized: opts.ca !== undefined && socket.authorized,
        authorizationError: socket.authorizationError ? String(socket.authorizationError) : undefined,
        san: (peer.subjectaltname ?? '').split(', ').filter(Boolean).map((s) => s.replace(/^DNS:/, '')),
        subject: [peer.subject?.CN ?? ''].flat()[0] ?? '',
        issuer: [peer.issuer?.CN ?? ''].flat()[0] ?? '',
        publicKeySha256: peer.pubkey ? createHash('sha256').update(peer.pubkey).digest('hex') : '',
        notBefore: new Date(peer.valid_from),
        notAfter: new Date(peer.valid_to),
        alpn: socket.alpnProtocol ?? false,
      });
      socket.end();
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
