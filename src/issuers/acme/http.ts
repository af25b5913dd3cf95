import { createSecureContext } from 'node:tls';
import { createAgents, destroyAgents, httpRequest, type RequestAgents, type RequestFailure, type RequestReply } from '../../core/http-request.js';
import { AcmeUnreachableError } from './problems.js';

/* A tiny fetch-like client over core/http-request: every ACME request goes through this one path. */

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  /** Send once more when no reply came within the timeout (only where a duplicate does no harm). */
  retryOnTimeout?: boolean;
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

/** Creates a transport with its own keep-alive agents. */
export function createHttpTransport(opts: HttpTransportOptions = {}): HttpTransport {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  // One context for every connection: given `ca` alone, each new socket would parse the bundle
  // and build its own context again (measurable with 50 concurrent issues).
  const secureContext = opts.caBundle !== undefined ? createSecureContext({ ca: opts.caBundle }) : undefined;
  // Idle sockets are dropped before a typical server idle timeout would close them under us.
  const agents = createAgents({ keepAlive: true, timeout: IDLE_SOCKET_MS, secureContext });
  const userAgent = opts.userAgent ?? 'haproxy-certd';

  async function send(url: string, req: HttpRequest): Promise<HttpResponse> {
    try {
      return await sendOnce(url, req);
    } catch (err) {
      // A kept-alive socket the server closed meanwhile, or a request left hanging: send once more
      // on a new connection of its own (not another pooled one, which may be stuck the same way).
      // Safe for a signed POST too: had the server used its nonce, the replay is refused as
      // badNonce and sendWithNonce signs it again.
      const again = err instanceof StaleSocketError || (err instanceof RequestTimeoutError && req.retryOnTimeout);
      if (!again) throw err instanceof RequestTimeoutError ? err.reported : err;
      const fresh = createAgents({ secureContext });
      try {
        return await sendOnce(url, req, fresh);
      } catch (e) {
        throw e instanceof RequestTimeoutError ? e.reported : e;
      } finally {
        destroyAgents(fresh);
      }
    }
  }

  async function sendOnce(url: string, req: HttpRequest, via: RequestAgents = agents): Promise<HttpResponse> {
    const target = new URL(url);
    if (target.protocol !== 'https:' && target.protocol !== 'http:') {
      throw new AcmeUnreachableError(`${url}: only http and https URLs are supported`);
    }
    const headers: Record<string, string> = { 'user-agent': userAgent, ...req.headers };
    if (req.body !== undefined) headers['content-length'] = String(Buffer.byteLength(req.body));
    const what = `${req.method} ${url}`;
    const reply = await httpRequest(target, {
      agents: via,
      method: req.method,
      headers,
      body: req.body,
      timeoutMs,
      maxBodyBytes: maxBody,
      signal: req.signal,
      fail: (f) => {
        if (f.kind === 'error' && f.staleSocket) return new StaleSocketError(f.error.message);
        const err = unreachable(what, timeoutMs, maxBody, f);
        return f.kind === 'timeout' ? new RequestTimeoutError(err) : err;
      },
    });
    return response(url, reply);
  }

  return {
    send,
    close() {
      destroyAgents(agents);
    },
  };
}

class StaleSocketError extends Error {}

/** A request with no reply in time; `reported` is what the caller sees when it is not retried. */
class RequestTimeoutError extends Error {
  constructor(readonly reported: AcmeUnreachableError) {
    super(reported.message);
  }
}

function response(url: string, reply: RequestReply): HttpResponse {
  const raw = reply.rawHeaders;
  const values = (name: string) => {
    const lower = name.toLowerCase();
    const out: string[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.toLowerCase() === lower) out.push(raw[i + 1]!);
    return out;
  };
  return { status: reply.status, url, body: reply.body, header: (name) => values(name)[0], headerValues: values };
}

function unreachable(what: string, timeoutMs: number, maxBody: number, f: RequestFailure): AcmeUnreachableError {
  if (f.kind === 'timeout') return new AcmeUnreachableError(`${what}: no complete reply within ${timeoutMs} ms`);
  if (f.kind === 'too-large') return new AcmeUnreachableError(`${what} failed: reply larger than ${maxBody} bytes`);
  const hint = f.untrustedTls ? " — the CA's TLS certificate is not trusted: set caBundle to its CA certificate (PEM)" : '';
  return new AcmeUnreachableError(`${what} failed: ${f.detail}${hint}`, { cause: f.error });
}
