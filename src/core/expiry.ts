/**
 * How close to its end a certificate is, judged the same way by the CLI (`list`, `status`) and the
 * status page: one threshold, here only. Pure; safe to call concurrently.
 */

const DAY_MS = 86_400_000;

/** Under this many days left a certificate "expires soon" (shown in colour, counted by `status`). */
export const EXPIRES_SOON_DAYS = 14;

/** Whole days left until notAfter (an ISO date); negative once expired. */
export function daysLeft(notAfter: string, now = Date.now()): number {
  return Math.floor((Date.parse(notAfter) - now) / DAY_MS);
}

export type ExpiryState = 'expired' | 'soon' | 'ok';

export function expiryState(notAfter: string, now = Date.now()): ExpiryState {
  return expiryStateOfDays(daysLeft(notAfter, now));
}

/** The same, from daysLeft() already computed (a pass over 100,000 certificates parses each date once). */
export function expiryStateOfDays(days: number): ExpiryState {
  if (days < 0) return 'expired';
  return days < EXPIRES_SOON_DAYS ? 'soon' : 'ok';
}
