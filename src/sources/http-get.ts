import type { IncomingHttpHeaders } from 'node:http';
import { createAgents, destroyAgents, httpRequest, type RequestAgents, type RequestFailure } from '../core/http-request.js';
import { SourceUnavailableError } from './errors.js';

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

/** Keep-alive agents for one source; `ca` (PEM) replaces the system trust store for https. */
export class HttpAgents {
  private readonly agents: RequestAgents;

  constructor(ca?: string) {
    this.agents = createAgents({ keepAlive: true, ca });
  }

  /**
   * One GET. Network failures, the timeout and an oversized body reject with
   * SourceUnavailableError; an abort rejects with the signal's reason. Header values never
   * appear in errors. Safe to call concurrently.
   */
  async get(url: URL, o: GetOptions): Promise<GetResponse> {
    const { status, headers, body } = await httpRequest(url, {
      agents: this.agents,
      method: 'GET',
      headers: o.headers,
      timeoutMs: o.timeoutMs,
      maxBodyBytes: o.maxBodyBytes,
      signal: o.signal,
      fail: (f) => unavailable(url, o, f),
    });
    return { status, headers, body };
  }

  close(): void {
    destroyAgents(this.agents);
  }
}

function unavailable(url: URL, o: GetOptions, f: RequestFailure): SourceUnavailableError {
  const what = `GET ${shown(url)}`;
  if (f.kind === 'timeout') return new SourceUnavailableError(`${what}: no complete reply within ${o.timeoutMs} ms`);
  if (f.kind === 'too-large') return new SourceUnavailableError(`${what} failed: reply larger than ${o.maxBodyBytes} bytes; a PEM bundle is a few KiB`);
  const hint = f.untrustedTls ? " — the server's TLS certificate is not trusted: set caBundle to its CA (PEM)" : '';
  return new SourceUnavailableError(`${what} failed: ${f.detail}${hint}`, { cause: f.error });
}

/** The URL for messages: no user:password part. */
export function shown(url: URL): string {
  return `${url.origin}${url.pathname}${url.search}`;
}
