import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';

/*
 * One request over node:http(s). Global fetch cannot take a custom CA on Node 20 without importing
 * undici (not installed); an https.Agent({ ca }) does, so the ACME client and the HTTP source both
 * send through here, each with its own agents, error kinds and wording.
 */

/** The caller's keep-alive agents; the URL's scheme picks one. */
export interface RequestAgents {
  readonly http: http.Agent;
  readonly https: https.Agent;
}

/** An http and an https agent with the same options (TLS options concern the https one only). */
export function createAgents(o: https.AgentOptions = {}): RequestAgents {
  return { http: new http.Agent(o), https: new https.Agent(o) };
}

/** Closes both agents' sockets. */
export function destroyAgents(agents: RequestAgents): void {
  agents.http.destroy();
  agents.https.destroy();
}

/** Why a request failed. An abort is not a failure: it rejects with the signal's reason. */
export type RequestFailure =
  | { kind: 'timeout' }
  /** The reply was longer than maxBodyBytes. */
  | { kind: 'too-large' }
  | {
      kind: 'error';
      error: Error;
      /** The error's message and code, e.g. `connect ECONNREFUSED 127.0.0.1:1 (ECONNREFUSED)`. */
      detail: string;
      /** The server's TLS certificate did not verify: the likely fix is a CA bundle. */
      untrustedTls: boolean;
      /** A reused keep-alive socket failed before any reply: the server had closed it meanwhile. */
      staleSocket: boolean;
    };

export interface RequestOptions {
  agents: RequestAgents;
  method: string;
  headers: Record<string, string>;
  body?: string;
  /** Bound on the whole request, connect to last byte. */
  timeoutMs: number;
  /** Longer replies fail. */
  maxBodyBytes: number;
  signal?: AbortSignal;
  /** Makes the caller's error for a failure; never called for an abort. */
  fail(failure: RequestFailure): Error;
}

export interface RequestReply {
  status: number;
  headers: IncomingHttpHeaders;
  /** Name, value, name, value…: repeated headers stay apart (`headers` joins Link values with ", "). */
  rawHeaders: string[];
  body: Buffer;
}

/* Verification failures whose likely fix is a CA bundle. */
const TLS_TRUST_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * Sends one request and reads the whole reply. Failures (network, TLS, the timeout, a reply cut
 * short or too long) reject with `o.fail`'s error; an abort rejects with the signal's reason.
 * Safe to call concurrently.
 */
export function httpRequest(url: URL, o: RequestOptions): Promise<RequestReply> {
  if (o.signal?.aborted) return Promise.reject(o.signal.reason);
  const secure = url.protocol === 'https:';
  return new Promise<RequestReply>((resolve, reject) => {
    let settled = false;
    const finish = (err: unknown, reply?: RequestReply) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(reply!);
    };
    const failed = (error: NodeJS.ErrnoException, staleSocket = false) => {
      if (settled) return;
      if (error instanceof BodyTooLargeError) return finish(o.fail({ kind: 'too-large' }));
      const code = error.code;
      const detail = `${error.message}${code ? ` (${code})` : ''}`;
      finish(o.fail({ kind: 'error', error, detail, untrustedTls: code !== undefined && TLS_TRUST_CODES.has(code), staleSocket }));
    };
    const request = (secure ? https : http).request(url, {
      method: o.method,
      headers: o.headers,
      agent: secure ? o.agents.https : o.agents.http,
    });
    const timer = setTimeout(() => {
      const err = o.fail({ kind: 'timeout' });
      finish(err);
      request.destroy(err);
    }, o.timeoutMs);
    const onAbort = () => {
      finish(o.signal!.reason);
      request.destroy();
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
    request.on('error', (err: NodeJS.ErrnoException) => {
      failed(err, request.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE'));
    });
    request.on('response', (res) => {
      readBody(res, o.maxBodyBytes).then(
        (body) => finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body }),
        failed,
      );
    });
    request.end(o.body);
  });
}

/* Cuts a reply off; reaches `fail` as a 'too-large' failure. */
class BodyTooLargeError extends Error {}

function readBody(res: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        res.destroy(new BodyTooLargeError());
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('connection closed mid-reply')));
  });
}
