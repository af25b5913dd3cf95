/**
 * Which certificates a listing wants: the filters of `GET /v1/certs`, `list` and the catalog's
 * page(). Pure; one place decides what a name filter means for every caller.
 */
import type { CertMeta, CertOrigin } from './store.js';

export interface CertQuery {
  /**
   * Matches when the id or any name does, case-insensitively: a glob (`*` any run of characters,
   * `?` one, anchored) when it has `*` or `?`, else a substring.
   */
  name?: string;
  issuer?: string;
  origin?: CertOrigin;
  /** ISO time: only certificates whose notAfter is before it (expired ones included). */
  expiresBefore?: string;
}

/** Names are case-insensitive; a glob becomes an anchored RegExp with everything else literal. */
export function globRegExp(glob: string): RegExp {
  const body = glob
    .toLowerCase()
    .split('')
    .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`);
}

/** A predicate for one name filter (see CertQuery.name). */
export function nameMatcher(pattern: string): (meta: Pick<CertMeta, 'id' | 'names'>) => boolean {
  const lower = pattern.toLowerCase();
  const one = /[*?]/.test(pattern) ? ((re) => (s: string) => re.test(s.toLowerCase()))(globRegExp(pattern)) : (s: string) => s.toLowerCase().includes(lower);
  return (m) => one(m.id) || m.names.some(one);
}

/** A predicate for the whole query; undefined when it has no filter (everything matches). */
export function certMatcher(q: CertQuery): ((meta: CertMeta) => boolean) | undefined {
  const tests: ((m: CertMeta) => boolean)[] = [];
  if (q.name !== undefined && q.name !== '') tests.push(nameMatcher(q.name));
  if (q.issuer !== undefined) tests.push((m) => m.issuer === q.issuer);
  if (q.origin !== undefined) tests.push((m) => m.origin === q.origin);
  if (q.expiresBefore !== undefined) {
    const before = Date.parse(q.expiresBefore);
    tests.push((m) => Date.parse(m.notAfter) < before);
  }
  if (tests.length === 0) return undefined;
  return (m) => tests.every((t) => t(m));
}
