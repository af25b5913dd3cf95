import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { connect } from 'node:net';
import { DnsTimeoutError, DnsUpdateError } from './errors.js';
import { HEADER_LENGTH, UDP_MAX } from './wire.js';

/** Where the authoritative server listens. `host` is an IP or a name the system resolver knows. */
export interface DnsEndpoint {
  host: string;
  port: number;
}

export interface ExchangeOptions {
  /** Wait for one UDP attempt; the TCP exchange gets `timeoutMs × attempts` in all. */
  timeoutMs: number;
  /** UDP sends before giving up (the same bytes each time, so a late reply still matches). */
  attempts: number;
  signal?: AbortSignal;
}

const TC = 0x0200;
const QR = 0x8000;

/**
 * Sends one DNS message and returns the reply whose id matches, from the server's address.
 * UDP first, with retries; TCP when the message is larger than plain UDP carries or the UDP reply
 * comes back truncated. Throws DnsTimeoutError when no reply comes within the bound (or nothing
 * listens on TCP), DnsUpdateError when the server name does not resolve, and the signal's reason
 * when aborted. Safe to call concurrently: every call has its own socket.
 */
export async function exchange(server: DnsEndpoint, message: Buffer, opts: ExchangeOptions): Promise<Buffer> {
  opts.signal?.throwIfAborted();
  const { address, family } = await lookup(server.host).catch((err: unknown) => {
    throw new DnsUpdateError(`cannot resolve the DNS server name ${server.host}: ${(err as Error).message}; check rfc2136.server`, { cause: err });
  });
  const target = { address, port: server.port, family };
  if (message.length > UDP_MAX) return overTcp(target, message, opts);
  const reply = await overUdp(target, message, opts);
  return reply.readUInt16BE(2) & TC ? overTcp(target, message, opts) : reply;
}

interface Target {
  address: string;
  port: number;
  family: number;
}

function isReplyTo(request: Buffer, reply: Buffer): boolean {
  return reply.length >= HEADER_LENGTH && reply.readUInt16BE(0) === request.readUInt16BE(0) && (reply.readUInt16BE(2) & QR) !== 0;
}

function where(target: Target, proto: string): string {
  const host = target.family === 6 ? `[${target.address}]` : target.address;
  return `${host}:${target.port} (${proto})`;
}

function overUdp(target: Target, message: Buffer, opts: ExchangeOptions): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const sock = createSocket(target.family === 6 ? 'udp6' : 'udp4');
    let timer: NodeJS.Timeout | undefined;
    let sent = 0;
    const finish = settleOnce(opts.signal, resolve, reject, () => {
      clearTimeout(timer);
      sock.close();
    });
    const send = () => {
      sent++;
      sock.send(message, target.port, target.address, (err) => {
        if (err) finish(new DnsTimeoutError(`cannot send to the DNS server at ${where(target, 'udp')}: ${err.message}`, { cause: err }));
      });
      timer = setTimeout(() => {
        if (sent < opts.attempts) send();
        else {
          finish(
            new DnsTimeoutError(
              `no answer from the DNS server at ${where(target, 'udp')} after ${sent} tries of ${opts.timeoutMs} ms: check rfc2136.server and that the port is reachable`,
            ),
          );
        }
      }, opts.timeoutMs);
    };
    // Unconnected socket: replies from any other address or port are ignored, not trusted.
    sock.on('message', (reply, rinfo) => {
      if (rinfo.address === target.address && rinfo.port === target.port && isReplyTo(message, reply)) finish(undefined, reply);
    });
    sock.on('error', (err) => finish(new DnsTimeoutError(`DNS exchange with ${where(target, 'udp')} failed: ${err.message}`, { cause: err })));
    send();
  });
}

function overTcp(target: Target, message: Buffer, opts: ExchangeOptions): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const sock = connect({ host: target.address, port: target.port, family: target.family });
    const bound = opts.timeoutMs * opts.attempts;
    let received = Buffer.alloc(0);
    const finish = settleOnce(opts.signal, resolve, reject, () => {
      clearTimeout(timer);
      sock.destroy();
    });
    const timer = setTimeout(
      () => finish(new DnsTimeoutError(`no answer from the DNS server at ${where(target, 'tcp')} within ${bound} ms: check rfc2136.server`)),
      bound,
    );
    const length = Buffer.alloc(2);
    length.writeUInt16BE(message.length);
    sock.on('connect', () => sock.write(Buffer.concat([length, message])));
    sock.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 2 || received.length < 2 + received.readUInt16BE(0)) return;
      const reply = received.subarray(2, 2 + received.readUInt16BE(0));
      if (isReplyTo(message, reply)) finish(undefined, reply);
      else finish(new DnsUpdateError(`the DNS server at ${where(target, 'tcp')} answered with another message id`));
    });
    sock.on('error', (err) => finish(new DnsTimeoutError(`cannot reach the DNS server at ${where(target, 'tcp')}: ${err.message}; check rfc2136.server`, { cause: err })));
    sock.on('close', () => finish(new DnsTimeoutError(`the DNS server at ${where(target, 'tcp')} closed the connection without an answer`)));
  });
}

/**
 * The one end of an exchange: the first of a reply, an error or the signal's abort settles the
 * promise; `cleanup` (timer, socket) runs exactly once, before it.
 */
function settleOnce(signal: AbortSignal | undefined, resolve: (reply: Buffer) => void, reject: (err: unknown) => void, cleanup: () => void) {
  let done = false;
  const finish = (err: unknown, reply?: Buffer) => {
    if (done) return;
    done = true;
    signal?.removeEventListener('abort', onAbort);
    cleanup();
    if (reply) resolve(reply);
    else reject(err);
  };
  const onAbort = () => finish(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  return finish;
}
