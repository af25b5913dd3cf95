/**
 * Every failure the daemon reports carries a stable `code` (CERTD_E_*): callers and tests switch
 * on codes, never on message text. Messages say what to do next.
 */
export class CertdError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Makes an error class with a fixed stable code; modules define their own kinds with it. */
export function errorKind(code: string) {
  return class extends CertdError {
    static readonly code = code;
    constructor(message: string, options?: { cause?: unknown }) {
      super(code, message, options);
    }
  };
}

/* Input that we refuse before it reaches a CA, a path or a runtime command. */
export class InvalidNameError extends errorKind('CERTD_E_INVALID_NAME') {}
export class InvalidPemError extends errorKind('CERTD_E_BAD_PEM') {}
export class KeyMismatchError extends errorKind('CERTD_E_KEY_MISMATCH') {}
export class CertExpiredError extends errorKind('CERTD_E_CERT_EXPIRED') {}
export class ConfigError extends errorKind('CERTD_E_CONFIG') {}
export class UsageError extends errorKind('CERTD_E_USAGE') {}
export class NotFoundError extends errorKind('CERTD_E_NOT_FOUND') {}

/* Store. */
export class StoreLockedError extends errorKind('CERTD_E_STORE_LOCKED') {}
export class StoreCorruptError extends errorKind('CERTD_E_STORE_CORRUPT') {}

/* Issuers. */
export class IssuerError extends errorKind('CERTD_E_ISSUER') {}

/* HAProxy runtime API, one class per reply kind we act on. */
export class HaproxyUnreachableError extends errorKind('CERTD_E_HAPROXY_UNREACHABLE') {}
export class HaproxyTimeoutError extends errorKind('CERTD_E_HAPROXY_TIMEOUT') {}
/** "Operations on certificates are currently locked!": retryable. */
export class HaproxyLockedError extends errorKind('CERTD_E_HAPROXY_LOCKED') {}
export class HaproxyExistsError extends errorKind('CERTD_E_HAPROXY_EXISTS') {}
export class HaproxyInUseError extends errorKind('CERTD_E_HAPROXY_IN_USE') {}
export class HaproxyNoTransactionError extends errorKind('CERTD_E_HAPROXY_NO_TRANSACTION') {}
/** The reply named another certificate than the one we sent: the 2.6.12 transaction bug. */
export class HaproxyTxnMismatchError extends errorKind('CERTD_E_HAPROXY_TXN_MISMATCH') {}
export class HaproxyNotFoundError extends errorKind('CERTD_E_HAPROXY_NOT_FOUND') {}
export class HaproxyCommandError extends errorKind('CERTD_E_HAPROXY_COMMAND') {}

/* API / CLI. */
export class ApiAuthError extends errorKind('CERTD_E_API_AUTH') {}
export class ApiError extends errorKind('CERTD_E_API') {}

export function errorCode(err: unknown): string | undefined {
  return err instanceof CertdError ? err.code : undefined;
}
