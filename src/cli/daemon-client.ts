import { ApiAuthError, ApiError, CertdError, categoryForStatus } from '../core/errors.js';

/** A small client for the daemon's /v1 API; errors come back as CertdErrors with the daemon's code. */
export class DaemonClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  /** True when a daemon answers /healthz within the bound. */
  async isUp(timeoutMs = 1_000): Promise<boolean> {
    try {
      const res = await fetch(`${this.baseUrl}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
      return res.ok;
    } catch {
      return false;
    }
  }

  async call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, timeoutMs = 300_000): Promise<T> {
    const res = await fetch(`${this.baseUrl}/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new ApiError(`daemon answered ${res.status} with a non-JSON body: ${text.slice(0, 200)}`);
    }
    if (res.ok) return json as T;
    const err = (json as { error?: { code?: string; message?: string } }).error;
    if (res.status === 401) throw new ApiAuthError(err?.message ?? 'API token rejected');
    throw new CertdError(err?.code ?? 'CERTD_E_API', err?.message ?? `daemon answered ${res.status}`, { category: categoryForStatus(res.status) });
  }
}
