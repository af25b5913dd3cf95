import { errorKind } from '../core/errors.js';

/*
 * Why a source could not deliver a bundle. Broken content itself keeps parseBundle's codes
 * (CERTD_E_BAD_PEM, CERTD_E_KEY_MISMATCH, CERTD_E_CERT_EXPIRED).
 */

/** The source could not be read right now (network, timeout, 5xx, missing root): retried with backoff. */
export class SourceUnavailableError extends errorKind('CERTD_E_SOURCE_UNAVAILABLE', 'upstream') {}
/** 401/403: the credentials in the source's headers are missing, wrong or expired. */
export class SourceAuthError extends errorKind('CERTD_E_SOURCE_AUTH', 'upstream') {}
/** 404: nothing at that URL. */
export class SourceNotFoundError extends errorKind('CERTD_E_SOURCE_NOT_FOUND', 'upstream') {}
/** Any other reply we cannot use (a redirect, an unexpected status). */
export class SourceResponseError extends errorKind('CERTD_E_SOURCE_RESPONSE', 'upstream') {}
/** A folder holds half a pair (fullchain.pem without privkey.pem, tls.crt without tls.key). */
export class SourceIncompleteError extends errorKind('CERTD_E_SOURCE_INCOMPLETE', 'upstream') {}
