import { DURATION_HINT, tryParseDuration } from '../config/duration.js';
import { UsageError } from '../core/errors.js';
import type { CertView } from '../service/cert-service.js';
import { globRegExp, type CertQuery } from '../store/cert-query.js';
import type { CertOrigin } from '../store/store.js';

/** `list`'s filters as given on the command line. */
export interface CertFilterOptions {
  /** A name glob (`*` any run of characters, `?` one); matches when any of the names does. */
  glob?: string;
  /** A duration: certificates whose notAfter falls within it (expired ones included). */
  expiring?: string;
  issuer?: string;
  origin?: CertOrigin;
}

export const ORIGINS: readonly CertOrigin[] = ['config', 'api', 'import', 'ondemand', 'source'];

/** A predicate for the options; UsageError for a duration it cannot read. Pure. */
export function certFilter(o: CertFilterOptions, now = Date.now()): (c: CertView) => boolean {
  const tests: ((c: CertView) => boolean)[] = [];
  if (o.glob !== undefined) {
    const re = globRegExp(o.glob);
    tests.push((c) => c.names.some((n) => re.test(n.toLowerCase())));
  }
  if (o.expiring !== undefined) {
    const within = expiringWithin(o.expiring);
    tests.push((c) => Date.parse(c.notAfter) - now <= within);
  }
  if (o.issuer !== undefined) tests.push((c) => c.issuer === o.issuer);
  if (o.origin !== undefined) tests.push((c) => c.origin === o.origin);
  return (c) => tests.every((t) => t(c));
}

/**
 * The same options as the daemon's (and the catalog's) query: a superset of what certFilter keeps
 * (a glob without a wildcard is a substring there), so the command filters the pages again.
 */
export function serverFilter(o: CertFilterOptions, now = Date.now()): CertQuery {
  return {
    ...(o.glob !== undefined ? { name: o.glob } : {}),
    ...(o.issuer !== undefined ? { issuer: o.issuer } : {}),
    ...(o.origin !== undefined ? { origin: o.origin } : {}),
    // One millisecond on: the query's bound is exclusive, --expiring's inclusive.
    ...(o.expiring !== undefined ? { expiresBefore: new Date(now + expiringWithin(o.expiring) + 1).toISOString() } : {}),
  };
}

function expiringWithin(text: string): number {
  const within = tryParseDuration(text);
  if (within === undefined) throw new UsageError(`--expiring ${JSON.stringify(text)}: expected ${DURATION_HINT}`);
  return within;
}
