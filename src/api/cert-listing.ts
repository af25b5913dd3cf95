/**
 * `GET /v1/certs`'s query: `limit`, `after` (an opaque cursor from a page's `next`), and the
 * filters `name`, `issuer`, `origin`, `expiresBefore`. Parsing and the cursor's encoding live here
 * so the server, the CLI and the tests agree on them. Pure.
 */
import { UsageError } from '../core/errors.js';
import type { PageRequest } from '../store/catalog.js';
import type { CertOrigin } from '../store/store.js';

export const LIST_LIMIT_DEFAULT = 100;
export const LIST_LIMIT_MAX = 5_000;
const ORIGINS: readonly CertOrigin[] = ['config', 'api', 'import', 'ondemand', 'source'];
const KNOWN = ['limit', 'after', 'name', 'issuer', 'origin', 'expiresBefore'];

/** Reads the query; a bad value or an unknown parameter is a UsageError saying what is allowed. */
export function parseListQuery(params: Record<string, string | undefined>): PageRequest {
  const unknown = Object.keys(params).filter((k) => !KNOWN.includes(k));
  if (unknown.length > 0) throw new UsageError(`unknown query parameter(s) ${unknown.join(', ')}: GET /v1/certs takes ${KNOWN.join(', ')}`);
  const { limit, after, name, issuer, origin, expiresBefore } = params;
  if (limit !== undefined && (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > LIST_LIMIT_MAX)) {
    throw new UsageError(`limit must be a whole number from 1 to ${LIST_LIMIT_MAX} (default ${LIST_LIMIT_DEFAULT}); follow "next" for more`);
  }
  if (origin !== undefined && !(ORIGINS as readonly string[]).includes(origin)) throw new UsageError(`origin "${origin}" is not one of ${ORIGINS.join(', ')}`);
  if (expiresBefore !== undefined && Number.isNaN(Date.parse(expiresBefore))) {
    throw new UsageError(`expiresBefore "${expiresBefore}" is not a time: give ISO 8601, e.g. 2026-12-31T00:00:00Z`);
  }
  return {
    limit: limit === undefined ? LIST_LIMIT_DEFAULT : Number(limit),
    ...(after === undefined ? {} : { after: decodeCursor(after) }),
    filter: {
      ...(name ? { name } : {}),
      ...(issuer ? { issuer } : {}),
      ...(origin ? { origin: origin as CertOrigin } : {}),
      ...(expiresBefore ? { expiresBefore: new Date(Date.parse(expiresBefore)).toISOString() } : {}),
    },
  };
}

/** The `next` a client sends back as `after`: opaque to it (base64url), so the key's form may change. */
export function encodeCursor(key: string): string {
  return Buffer.from(JSON.stringify({ v: 1, after: key })).toString('base64url');
}

function decodeCursor(text: string): string {
  try {
    const v: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (typeof v === 'object' && v !== null && (v as { v?: unknown }).v === 1 && typeof (v as { after?: unknown }).after === 'string') return (v as { after: string }).after;
  } catch {
    /* reported below */
  }
  throw new UsageError('after is not a cursor this daemon gave: pass the "next" of the page before, unchanged (or leave it out for the first page)');
}

/** `GET /v1/certs?stream=array`: every matching certificate in one JSON array, written as it is read. */
export const STREAM_ARRAY = 'array';

/**
 * The request of a streamed listing (`stream=array`), or undefined when the query asks for a page.
 * The filters are a page's; `limit` and `after` do not apply (it answers every match).
 */
export function parseStreamQuery(params: Record<string, string | undefined>): Omit<PageRequest, 'limit'> | undefined {
  const { stream, ...rest } = params;
  if (stream === undefined) return undefined;
  if (stream !== STREAM_ARRAY) throw new UsageError(`stream "${stream}" is not known: give stream=${STREAM_ARRAY} (every match in one JSON array), or leave it out for a page`);
  if (rest.limit !== undefined || rest.after !== undefined) throw new UsageError(`stream=${STREAM_ARRAY} answers every match: leave out limit and after`);
  const { filter } = parseListQuery(rest);
  return { filter };
}

/**
 * Items laid out as JSON.stringify(array, null, 2) lays out an array's elements, without the
 * brackets: chunks joined by ",\n" inside "[\n" … "\n]\n" make that array's text. One native
 * stringify per chunk (an indent per item costs ~2× as much at 100,000). `items` is not empty.
 */
export function arrayChunk(items: readonly unknown[]): string {
  return JSON.stringify(items, null, 2).slice(2, -2);
}
