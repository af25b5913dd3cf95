import { errorKind } from '../core/errors.js';

/** A key of a kind we cannot sign with or issue for (only ECDSA P-256/P-384 and RSA ≥ 2048). */
export class UnsupportedKeyError extends errorKind('CERTD_E_UNSUPPORTED_KEY', 'input') {}

/**
 * A certificate or CSR we cannot encode or decode: an IP literal with a zone id, an
 * out-of-range date or serial, a certificate that is not X.509 DER.
 */
export class CertEncodingError extends errorKind('CERTD_E_CERT_ENCODING', 'input') {}
