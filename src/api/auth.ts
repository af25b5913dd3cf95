import { createHash, timingSafeEqual } from 'node:crypto';

/** Constant-time token comparison (hashed first, so lengths do not leak either). */
export function tokenMatches(given: string, token: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(token));
}

export function authError() {
  return { error: { code: 'CERTD_E_API_AUTH', message: 'missing or wrong API token: send Authorization: Bearer <token>' } };
}

/** The token of an `Authorization: Bearer <token>` header; any other scheme (or none) gives undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer (\S+)$/.exec(header ?? '');
  return m?.[1];
}
