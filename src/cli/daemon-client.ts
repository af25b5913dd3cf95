import { get as httpGet, type IncomingMessage } from 'node:http';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { ApiAuthError, ApiError, CertdError, categoryForStatus } from '../core/errors.js';

const NDJSON = 'application/x-ndjson';

/** A small client for the daemon's /v1 API; errors come back as CertdErrors with the daemon's code. */
export class DaemonClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  /** True when a daemon answers /healthz within the bound. */
  async isUp(timeoutMs = 1_000): Promise<boolean> {
    try {
      const res = await getRaw(`${this.baseUrl}/healthz`, {}, timeoutMs);
      res.resume();
      return res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300;
    } catch {
      return false;
    }
  }

  async call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, timeoutMs = 300_000): Promise<T> {
    const res = await this.send(method, path, body, 'application/json', AbortSignal.timeout(timeoutMs));
    const json = parseJson(res.status, await res.text());
    if (res.ok) return json as T;
    throw errorFrom(res.status, json);
  }

  /**
   * An NDJSON answer, one parsed object per line as the daemon sends it. The bound is on the
   * silence between lines (each is one certificate's work), not on the whole stream.
   */
  async *lines<T>(method: 'POST', path: string, body: unknown, idleMs = 300_000): AsyncGenerator<T> {
    const idle = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => idle.abort(new ApiError(`the daemon sent nothing for ${idleMs / 1000} s`)), idleMs);
    };
    arm();
    try {
      const res = await this.send(method, path, body, NDJSON, idle.signal);
      if (!res.ok || !res.body) throw errorFrom(res.status, parseJson(res.status, await res.text()));
      if (!res.headers.get('content-type')?.startsWith(NDJSON)) {
        throw new ApiError(`daemon answered ${path} with ${res.headers.get('content-type') ?? 'no content type'}, not a stream: is it an older version than this CLI?`);
      }
      for await (const line of createInterface({ input: Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), crlfDelay: Infinity })) {
        arm();
        if (line.trim()) yield parseJson(res.status, line) as T;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Writes a JSON answer's body to `out` as it arrives (no parse), and checks it ended as a JSON
   * array ends. Answers false, writing nothing, when the daemon refuses the query as a usage error
   * (400: an older daemon without it), so the caller can fall back.
   */
  async pipeArray(path: string, out: NodeJS.WritableStream, idleMs = 300_000): Promise<boolean> {
    const res = await getRaw(`${this.baseUrl}/v1${path}`, { authorization: `Bearer ${this.token}`, accept: 'application/json' }, idleMs);
    const status = res.statusCode ?? 0;
    if (status === 400) {
      res.resume();
      return false;
    }
    if (status < 200 || status >= 300) {
      let text = '';
      for await (const chunk of res) text += String(chunk);
      throw errorFrom(status, parseJson(status, text));
    }
    let tail = '';
    for await (const chunk of res as AsyncIterable<Buffer>) {
      tail = (tail + chunk.subarray(-3).toString('latin1')).slice(-3);
      if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
    }
    if (!tail.endsWith(']\n')) throw new ApiError(`the daemon's answer to ${path} ended before the list did (the daemon stopped or the connection broke): the output is incomplete`);
    return true;
  }

  private send(method: string, path: string, body: unknown, accept: string, signal: AbortSignal): Promise<Response> {
    return fetch(`${this.baseUrl}/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, accept, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal,
    });
  }
}

/**
 * A GET through node:http, for the calls a short CLI run makes (`list`): fetch's first call loads
 * its HTTP stack, ~0.1–0.2 s of a run here. The bound is on silence (socket idle), not the total.
 */
function getRaw(url: string, headers: Record<string, string>, idleMs: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    // No agent: one connection, closed after, so nothing keeps the process up once it is done.
    const req = httpGet(url, { headers, agent: false, timeout: idleMs }, resolve);
    req.on('timeout', () => req.destroy(new ApiError(`the daemon sent nothing for ${idleMs / 1000} s (${url})`)));
    req.on('error', reject);
  });
}

function parseJson(status: number, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(`daemon answered ${status} with a non-JSON body: ${text.slice(0, 200)}`);
  }
}

function errorFrom(status: number, json: unknown): CertdError {
  const err = (json as { error?: { code?: string; message?: string } }).error;
  if (status === 401) return new ApiAuthError(err?.message ?? 'API token rejected');
  return new CertdError(err?.code ?? 'CERTD_E_API', err?.message ?? `daemon answered ${status}`, { category: categoryForStatus(status) });
}
