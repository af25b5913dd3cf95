import { CertdError, outcomeOf } from '../core/errors.js';

/** HTTP status for any thrown value: from its category (core/errors.ts outcomeOf). */
export function httpStatusFor(err: unknown): number {
  return outcomeOf(err).status;
}

/** Retry-After seconds for an error that says when to try again. */
export function retryAfterSeconds(err: unknown): number | undefined {
  const ms = err instanceof CertdError ? err.retryAfterMs : undefined;
  return ms === undefined ? undefined : Math.max(1, Math.ceil(ms / 1000));
}

/** The JSON body of every API error: a stable code and an operator-readable message. */
export function errorBody(err: unknown): { error: { code: string; message: string } } {
  if (err instanceof CertdError) return { error: { code: err.code, message: err.message } };
  return { error: { code: 'CERTD_E_INTERNAL', message: err instanceof Error && err.message ? err.message : 'internal error (see the daemon log)' } };
}
