import { DURATION_HINT, tryParseDuration } from '../config/duration.js';
import { UsageError } from '../core/errors.js';
import type { CertView } from '../service/cert-service.js';
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

/** Names are case-insensitive; a glob becomes an anchored RegExp with everything else literal. */
function globRegExp(glob: string): RegExp {
  const body = glob
    .toLowerCase()
    .split('')
    .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`);
}

/** A predicate for the options; UsageError for a duration it cannot read. Pure. */
export function certFilter(o: CertFilterOptions, now = Date.now()): (c: CertView) => boolean {
  const tests: ((c: CertView) => boolean)[] = [];
  if (o.glob !== undefined) {
    const re = globRegExp(o.glob);
    tests.push((c) => c.names.some((n) => re.test(n.toLowerCase())));
  }
  if (o.expiring !== undefined) {
    const within = tryParseDuration(o.expiring);
    if (within === undefined) throw new UsageError(`--expiring ${JSON.stringify(o.expiring)}: expected ${DURATION_HINT}`);
    tests.push((c) => Date.parse(c.notAfter) - now <= within);
  }
  if (o.issuer !== undefined) tests.push((c) => c.issuer === o.issuer);
  if (o.origin !== undefined) tests.push((c) => c.origin === o.origin);
  return (c) => tests.every((t) => t(c));
}
