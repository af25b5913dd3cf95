import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { createSecureContext } from 'node:tls';
import { AcmeUnreachableError } from './problems.js';

/*
 * A tiny fetch-like client over node:http(s). Global fetch cannot take a custom CA without
 * undici's Agent, and undici is not importable from Node 20 without installing it; an
 * https.Agent({ ca }) does the same job, so every ACME request goes through this one path.
 */

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  /** The URL requested (relative Location and Link values resolve against it). */
  url: string;
  body: Buffer;
  /** First value of a header, or undefined. */
  header(name: string): string | undefined;
  /** Every value of a header sent several times (Link). */
  headerValues(name: string): string[];
}

export interface HttpTransportOptions {
  /** PEM trust for the server's TLS; the system store when absent. */
  caBundle?: string;
  /** Bound on each request, connect to last byte (default 30 s). */
  timeoutMs?: number;
  /** Replies larger than this fail (default 4 MiB): certificate chains are a few KiB. */
  maxBodyBytes?: number;
  userAgent?: string;
}

/** Sends requests; safe to call concurrently (one keep-alive agent shared by all requests). */
export interface HttpTransport {
  send(url: string, req: HttpRequest): Promise<HttpResponse>;
  /** Closes idle keep-alive connections. */
  close(): void;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_BODY = 4 * 1024 * 1024;
const IDLE_SOCKET_MS = 10_000;

/* TLS verification failures: the likely fix is the caBundle option, so the message says so. */
const TLS_TRUST_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Creates a transport with its own keep-alive agents. */
export function createHttpTransport(opts: HttpTransportOptions = {}): HttpTransport {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  // One context for every connection: given `ca` alone, each new socket would parse the bundle
  // and build its own context again (measurable with 50 concurrent issues).
  const secureContext = opts.caBundle !== undefined ? createSecureContext({ ca: opts.caBundle }) : undefined;
  // Idle sockets are dropped before a typical server idle timeout would close them under us.
  const httpsAgent = new https.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS, secureContext });
  const httpAgent = new http.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS });
  const userAgent = opts.userAgent ?? 'haproxy-certd';

  async function send(url: string, req: HttpRequest): Promise<HttpResponse> {
    try {
      return await sendOnce(url, req);
    } catch (err) {
      // A kept-alive socket the server closed meanwhile: send once more on a fresh one. Safe for a
      // signed POST too: had the server used its nonce, the replay is refused as badNonce and
      // sendWithNonce signs it again.
      if (!(err instanceof StaleSocketError)) throw err;
      return sendOnce(url, req);
    }
  }

  function sendOnce(url: string, req: HttpRequest): Promise<HttpResponse> {
    req.signal?.throwIfAborted();
    const target = new URL(url);
    const secure = target.protocol === 'https:';
    if (!secure && target.protocol !== 'http:') {
      return Promise.reject(new AcmeUnreachableError(`${url}: only http and https URLs are supported`));
    }
    const headers: Record<string, string> = { 'user-agent': userAgent, ...req.headers };
    if (req.body !== undefined) headers['content-length'] = String(Buffer.byteLength(req.body));

    return new Promise<HttpResponse>((resolve, reject) => {
      let settled = false;
      const finish = (err: unknown, res?: HttpResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(res!);
      };
      const request = (secure ? https : http).request(target, {
        method: req.method,
        headers,
        agent: secure ? httpsAgent : httpAgent,
      });
      const timer = setTimeout(() => {
        const err = new AcmeUnreachableError(`${req.method} ${url}: no complete reply within ${timeoutMs} ms`);
        finish(err);
        request.destroy(err);
      }, timeoutMs);
      const onAbort = () => {
        finish(req.signal!.reason);
        request.destroy();
      };
      req.signal?.addEventListener('abort', onAbort, { once: true });
      request.on('error', (err: NodeJS.ErrnoException) => {
        const stale = request.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE');
        finish(stale ? new StaleSocketError(err.message) : unreachable(req.method, url, err));
      });
      request.on('response', (res) => {
        readBody(res, maxBody).then(
          (body) => finish(undefined, response(url, res, body)),
          (err: Error) => finish(unreachable(req.method, url, err)),
        );
      });
      request.end(req.body);
    });
  }

  return {
    send,
    close() {
      httpsAgent.destroy();
      httpAgent.destroy();
    },
  };
}

class StaleSocketError extends Error {}

function readBody(res: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        res.destroy(new Error(`reply larger than ${max} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('connection closed mid-reply')));
  });
}

function response(url: string, res: IncomingMessage, body: Buffer): HttpResponse {
  // rawHeaders keeps repeated headers apart; `res.headers` would join Link values with ", ".
  const raw = res.rawHeaders;
  const values = (name: string) => {
    const lower = name.toLowerCase();
    const out: string[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.toLowerCase() === lower) out.push(raw[i + 1]!);
    return out;
  };
  return { status: res.statusCode ?? 0, url, body, header: (name) => values(name)[0], headerValues: values };
}

function unreachable(method: string, url: string, err: Error): AcmeUnreachableError {
  if (err instanceof AcmeUnreachableError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const hint = code && TLS_TRUST_CODES.has(code)
    ? " — the CA's TLS certificate is not trusted: set caBundle to its CA certificate (PEM)"
    : '';
  return new AcmeUnreachableError(`${method} ${url} failed: ${err.message}${code ? ` (${code})` : ''}${hint}`, { cause: err });
}
