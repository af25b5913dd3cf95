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
