import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { SourceUnavailableError } from './errors.js';

/*
 * GET over node:http(s). Global fetch cannot take a custom CA on Node 20 without importing
 * undici (not installed); an https.Agent({ ca }) does, so every request goes through this one path.
 */

export interface GetResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface GetOptions {
  headers: Record<string, string>;
  /** Bound on the whole request, connect to last byte. */
  timeoutMs: number;
  maxBodyBytes: number;
  signal?: AbortSignal;
}

/* Verification failures whose likely fix is the caBundle option. */
const TLS_TRUST_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Keep-alive agents for one source; `ca` (PEM) replaces the system trust store for https. */
export class HttpAgents {
  private readonly https: https.Agent;
  private readonly http = new http.Agent({ keepAlive: true });

  constructor(ca?: string) {
    this.https = new https.Agent({ keepAlive: true, ca });
  }

  /**
   * One GET. Network failures, the timeout and an oversized body reject with
   * SourceUnavailableError; an abort rejects with the signal's reason. Header values never
   * appear in errors. Safe to call concurrently.
   */
  get(url: URL, o: GetOptions): Promise<GetResponse> {
    const secure = url.protocol === 'https:';
    return new Promise<GetResponse>((resolve, reject) => {
      let settled = false;
      const finish = (err: unknown, res?: GetResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(res!);
      };
      const request = (secure ? https : http).request(url, {
        method: 'GET',
        headers: o.headers,
        agent: secure ? this.https : this.http,
      });
      const timer = setTimeout(() => {
        const err = new SourceUnavailableError(`GET ${shown(url)}: no complete reply within ${o.timeoutMs} ms`);
        finish(err);
        request.destroy(err);
      }, o.timeoutMs);
      const onAbort = () => {
        finish(o.signal!.reason);
        request.destroy();
      };
      if (o.signal?.aborted) return onAbort();
      o.signal?.addEventListener('abort', onAbort, { once: true });
      request.on('error', (err) => finish(unavailable(url, err)));
      request.on('response', (res) => {
        readBody(res, o.maxBodyBytes).then(
          (body) => finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body }),
          (err: Error) => finish(unavailable(url, err)),
        );
      });
      request.end();
    });
  }

  close(): void {
    this.https.destroy();
    this.http.destroy();
  }
}

function readBody(res: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        res.destroy(new Error(`reply larger than ${max} bytes; a PEM bundle is a few KiB`));
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('connection closed mid-reply')));
  });
}

function unavailable(url: URL, err: Error): SourceUnavailableError {
  if (err instanceof SourceUnavailableError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const hint = code && TLS_TRUST_CODES.has(code) ? " — the server's TLS certificate is not trusted: set caBundle to its CA (PEM)" : '';
  return new SourceUnavailableError(`GET ${shown(url)} failed: ${err.message}${code ? ` (${code})` : ''}${hint}`, { cause: err });
}

/** The URL for messages: no user:password part. */
export function shown(url: URL): string {
  return `${url.origin}${url.pathname}${url.search}`;
}
