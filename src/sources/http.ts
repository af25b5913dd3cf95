import { STATUS_CODES } from 'node:http';
import { coalesced } from '../core/async.js';
import { UsageError } from '../core/errors.js';
import { validateName } from '../core/names.js';
import { SourceAuthError, SourceNotFoundError, SourceResponseError, SourceUnavailableError } from './errors.js';
import { BundleGate } from './gate.js';
import { HttpAgents, shown } from './http-get.js';
import type { CertSource, SourceSink } from './source.js';

export interface HttpSourceOptions {
  /**
   * An http(s) URL answering with one combined PEM bundle (certificate chain + private key).
   * With a `{name}` placeholder it is a template: fetched once per entry of `names`, the name
   * percent-encoded in its place. Secrets go in `headers`, not here: URLs appear in reports.
   */
  url: string;
  /** Required with a `{name}` template, refused without one. */
  names?: readonly string[];
  /** Sent with every request (e.g. Authorization). Values are never logged or put in errors. */
  headers?: Record<string, string>;
  everyMs: number;
  /** Bound on each request, connect to last byte. */
  timeoutMs: number;
  /** PEM of the CAs that sign the server's certificate; replaces the system trust store. */
  caBundle?: string;
  /** First retry after a transient failure (network, timeout, 408/429/5xx); doubles up to everyMs. Default 5 s. */
  retryMinMs?: number;
  /** Larger replies are refused (default 1 MiB). */
  maxBodyBytes?: number;
}

interface Target {
  url: URL;
  /** The URL as shown: `url` without credentials. */
  key: string;
  /** Validators of the last full reply, sent back so an unchanged bundle costs a 304. */
  etag?: string;
  lastModified?: string;
}

const PLACEHOLDER = '{name}';
const CONCURRENCY = 8;
const DEFAULT_RETRY_MIN_MS = 5_000;
const DEFAULT_MAX_BODY = 1024 * 1024;

/**
 * Certificates fetched over HTTP(S), keyed by the URL fetched. Every pass sends conditional
 * requests (If-None-Match / If-Modified-Since), so an unchanged bundle is a 304 and no work.
 * A failure of any kind — 401/403, 404, 5xx, network, timeout, a body that is not a valid
 * bundle — is reported and changes nothing: the last good bundle keeps serving. Transient
 * failures bring the next pass forward (backoff from retryMinMs, doubling, up to everyMs).
 *
 * Keys are the URLs fetched, without any user:password part (URLs appear in reports).
 *
 * start/rescan/stop are safe to call concurrently; passes never overlap (a rescan during a pass
 * joins one follow-up pass). Within a pass up to 8 URLs are fetched at once; the sink still gets
 * one call at a time.
 */
export class HttpSource implements CertSource {
  readonly name: string;
  private readonly targets: Target[];
  private readonly headers: Record<string, string>;
  private readonly agents: HttpAgents;
  private readonly retryMinMs: number;
  private readonly maxBodyBytes: number;
  private readonly aborter = new AbortController();
  private readonly runPass = coalesced(() => this.pass());
  private gate?: BundleGate;
  private timer?: NodeJS.Timeout;
  private last?: Promise<void>;
  /** Consecutive passes with a transient failure. */
  private streak = 0;

  constructor(private readonly o: HttpSourceOptions) {
    if (!(o.everyMs > 0) || !(o.timeoutMs > 0)) throw new UsageError('http source: everyMs and timeoutMs must be above zero');
    const template = o.url.includes(PLACEHOLDER);
    if (template && !o.names) throw new UsageError(`http source ${o.url}: the URL has ${PLACEHOLDER}; give the names to fetch`);
    if (!template && o.names) throw new UsageError(`http source ${o.url}: names were given but the URL has no ${PLACEHOLDER} to put them in`);
    const urls = template
      ? [...new Set(o.names!.map((n) => validateName(n, { wildcard: true })))].map((n) => o.url.replaceAll(PLACEHOLDER, encodeURIComponent(n)))
      : [o.url];
    this.targets = urls.map((u) => {
      const url = httpUrl(u);
      return { url, key: shown(url) };
    });
    this.headers = { 'user-agent': 'haproxy-certd', accept: 'application/x-pem-file, text/plain;q=0.9, */*;q=0.1', ...o.headers };
    this.agents = new HttpAgents(o.caBundle);
    this.retryMinMs = o.retryMinMs ?? DEFAULT_RETRY_MIN_MS;
    this.maxBodyBytes = o.maxBodyBytes ?? DEFAULT_MAX_BODY;
    this.name = `http:${templateShown(o.url)}`;
  }

  async start(sink: SourceSink): Promise<void> {
    if (this.gate) throw new UsageError(`${this.name} is already started`);
    this.gate = new BundleGate(sink);
    await this.rescan();
  }

  rescan(): Promise<void> {
    if (!this.gate || this.aborter.signal.aborted) return Promise.resolve();
    this.last = this.runPass();
    return this.last;
  }

  async stop(): Promise<void> {
    this.aborter.abort();
    clearTimeout(this.timer);
    await this.last?.catch(() => undefined);
    this.agents.close();
  }

  private async pass(): Promise<void> {
    let transient = false;
    let next = 0;
    const worker = async () => {
      while (next < this.targets.length && !this.aborter.signal.aborted) {
        const target = this.targets[next++]!;
        try {
          if (await this.fetchOne(target)) transient = true;
        } catch (err) {
          // Only a bug gets here (fetchOne reports its own failures); say so, retry soon.
          this.gate!.fail(target.key, err as Error);
          transient = true;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, this.targets.length) }, worker));
    if (this.aborter.signal.aborted) return;
    this.streak = transient ? this.streak + 1 : 0;
    const delay = transient ? Math.min(this.o.everyMs, this.retryMinMs * 2 ** Math.min(this.streak - 1, 30)) : this.o.everyMs;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.rescan(), delay);
    this.timer.unref();
  }

  /** Fetches one URL and hands the result to the gate. True when it failed in a way worth a quick retry. */
  private async fetchOne(t: Target): Promise<boolean> {
    const gate = this.gate!;
    const key = t.key;
    const headers = { ...this.headers };
    if (t.etag) headers['if-none-match'] = t.etag;
    if (t.lastModified) headers['if-modified-since'] = t.lastModified;
    let res;
    try {
      res = await this.agents.get(t.url, { headers, timeoutMs: this.o.timeoutMs, maxBodyBytes: this.maxBodyBytes, signal: this.aborter.signal });
    } catch (err) {
      if (this.aborter.signal.aborted) return false;
      gate.fail(key, err as Error);
      return err instanceof SourceUnavailableError;
    }
    if (res.status === 304) {
      gate.unchanged(key);
      return false;
    }
    if (res.status === 200) {
      const outcome = await gate.offer(key, res.body.toString('utf8'));
      const keep = outcome !== 'retry';
      t.etag = keep ? header(res.headers.etag) : undefined;
      t.lastModified = keep ? header(res.headers['last-modified']) : undefined;
      return false;
    }
    const err = statusError(key, res.status, Object.keys(this.o.headers ?? {}), res.headers.location);
    gate.fail(key, err);
    return err instanceof SourceUnavailableError;
  }
}

/** The error for a reply other than 200/304; header names (never values) help with 401/403. */
function statusError(url: string, status: number, headerNames: string[], location: string | undefined): Error {
  const answered = `GET ${url} answered ${status} ${STATUS_CODES[status] ?? ''}`.trimEnd();
  if (status === 401 || status === 403) {
    const sent = headerNames.length > 0 ? `the credentials sent in ${headerNames.join(', ')}` : 'no headers are configured';
    return new SourceAuthError(`${answered}: check the token (${sent})`);
  }
  if (status === 404) return new SourceNotFoundError(`${answered}: nothing at that URL; check the url (and the name, for a {name} template)`);
  if (status === 408 || status === 429 || status >= 500) return new SourceUnavailableError(`${answered}; retried with backoff`);
  if (status >= 300 && status < 400) {
    return new SourceResponseError(`${answered}${location ? ` to ${location}` : ''}: redirects are not followed; set the url to the final location`);
  }
  return new SourceResponseError(`${answered}: expected 200 with a PEM bundle`);
}

function httpUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`http source: ${JSON.stringify(text)} is not a URL; write https://host/path`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`http source: ${url.protocol} URLs are not supported; use http: or https:`);
  return url;
}

/** A template URL without its user:password part (`{name}` would not survive URL parsing). */
function templateShown(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1');
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
