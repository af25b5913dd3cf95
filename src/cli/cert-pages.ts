/**
 * `list` reads certificates page by page (GET /v1/certs, or the store's catalog without a daemon)
 * and writes `--json` as one JSON array as the pages arrive: at 100,000 certificates neither side
 * builds the whole answer at once.
 */
import { InvalidArgumentError } from 'commander';
import { LIST_LIMIT_MAX, STREAM_ARRAY } from '../api/cert-listing.js';
import type { CertPage, CertService, CertView } from '../service/cert-service.js';
import type { PageRequest } from '../store/catalog.js';
import type { CertQuery } from '../store/cert-query.js';
import { serverFilter, type CertFilterOptions } from './cert-filter.js';
import type { DaemonClient } from './daemon-client.js';

/** The query string of `GET /v1/certs` for the command's options (the largest page the API gives). */
export function listQuery(o: CertFilterOptions): URLSearchParams {
  const q: CertQuery = serverFilter(o);
  const params = new URLSearchParams({ limit: String(LIST_LIMIT_MAX) });
  for (const [k, v] of Object.entries(q)) if (v !== undefined) params.set(k, String(v));
  return params;
}

/** The query of `GET /v1/certs?stream=array` for the command's options (every match, one array). */
export function streamQuery(o: CertFilterOptions): URLSearchParams {
  const params = listQuery(o);
  params.delete('limit');
  params.set('stream', STREAM_ARRAY);
  return params;
}

/** Every page the daemon has for the query, following `next` until the last. */
export async function* daemonPages(client: DaemonClient, query: URLSearchParams): AsyncGenerator<CertPage> {
  let after: string | undefined;
  do {
    const params = new URLSearchParams(query);
    if (after !== undefined) params.set('after', after);
    const page = await client.call<CertPage>('GET', `/certs?${params}`);
    yield page;
    after = page.next;
  } while (after !== undefined);
}

/** Every page of the store's own catalog (no daemon running). */
export async function* storePages(service: CertService, req: Omit<PageRequest, 'limit'>): AsyncGenerator<CertPage> {
  let after: string | undefined;
  do {
    const page = await service.page({ ...req, limit: LIST_LIMIT_MAX, ...(after === undefined ? {} : { after }) });
    yield page;
    after = page.next;
  } while (after !== undefined);
}

/** Writes one JSON array, an element at a time, formatted as JSON.stringify(array, null, 2) would. */
export class JsonArrayWriter {
  #count = 0;
  constructor(private readonly out: NodeJS.WritableStream) {}

  push(item: CertView): void {
    const text = JSON.stringify(item, null, 2).replace(/\n/g, '\n  ');
    this.out.write(`${this.#count++ === 0 ? '[\n  ' : ',\n  '}${text}`);
  }

  end(): void {
    this.out.write(this.#count === 0 ? '[]\n' : '\n]\n');
  }
}

/** commander parser for `--limit`. */
export function positiveInt(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new InvalidArgumentError('give a whole number from 1');
  return Number(text);
}
