import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

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

/**
 * The status page's session: `<expires ms>.<HMAC of it keyed by the API token>`. Stateless (it
 * survives a daemon restart), never the token itself (a stolen cookie cannot call /v1), and void
 * once the token changes or it expires.
 */
export function sessionValue(token: string, expiresAtMs: number): string {
  return `${expiresAtMs}.${sessionMac(token, expiresAtMs)}`;
}

export function sessionValid(value: string | undefined, token: string, now = Date.now()): boolean {
  const m = /^(\d{1,15})\.([A-Za-z0-9_-]{43})$/.exec(value ?? '');
  if (!m || Number(m[1]) <= now) return false;
  return timingSafeEqual(Buffer.from(m[2]!), Buffer.from(sessionMac(token, Number(m[1]))));
}

function sessionMac(token: string, expiresAtMs: number): string {
  return createHmac('sha256', token).update(`haproxy-certd status page session ${expiresAtMs}`).digest('base64url');
}
