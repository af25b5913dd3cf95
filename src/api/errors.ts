import { CertdError } from '../core/errors.js';

/** HTTP status for an error code: input problems are the caller's (4xx), the rest ours (5xx). */
export function httpStatusFor(err: unknown): 400 | 401 | 404 | 409 | 500 | 502 {
  if (!(err instanceof CertdError)) return 500;
  switch (err.code) {
    case 'CERTD_E_INVALID_NAME':
    case 'CERTD_E_BAD_PEM':
    case 'CERTD_E_KEY_MISMATCH':
    case 'CERTD_E_CERT_EXPIRED':
    case 'CERTD_E_USAGE':
    case 'CERTD_E_CONFIG':
      return 400;
    case 'CERTD_E_API_AUTH':
      return 401;
    case 'CERTD_E_NOT_FOUND':
      return 404;
    case 'CERTD_E_STORE_LOCKED':
      return 409;
    default:
      return err.code.startsWith('CERTD_E_HAPROXY') || err.code.startsWith('CERTD_E_ISSUER') ? 502 : 500;
  }
}

/** The JSON body of every API error: a stable code and an operator-readable message. */
export function errorBody(err: unknown): { error: { code: string; message: string } } {
  if (err instanceof CertdError) return { error: { code: err.code, message: err.message } };
  return { error: { code: 'CERTD_E_INTERNAL', message: err instanceof Error ? err.message : String(err) } };
}
