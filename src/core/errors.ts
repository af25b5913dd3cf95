/**
 * Every failure the daemon reports carries a stable `code` (CERTD_E_*) and a `category`: callers
 * and tests switch on codes, never on message text; the HTTP status and the CLI exit code follow
 * from the category alone (outcomeOf). Messages say what to do next.
 */

/** What kind of failure an error is, decided where the error kind is defined. */
export type ErrorCategory =
  /** The caller's input is wrong (a name, a PEM, a flag, the config). */
  | 'input'
  /** The caller's input is over a stated limit (a request body, a PEM). */
  | 'too-large'
  | 'auth'
  | 'not-found'
  /** The request conflicts with the state: it exists already, someone else holds the lock. */
  | 'conflict'
  /** A limit (ours or the CA's) says "not now": retry after `retryAfterMs` when given. */
  | 'rate-limited'
  /** A server we depend on (CA, DNS, HAProxy, a source) failed or refused. */
  | 'upstream'
  /** Something we need is down or not ready (HAProxy unreachable, a daemon starting). */
  | 'unavailable'
  /** The disk is full: what was and was not applied is in the message. */
  | 'storage-full'
  | 'internal';

export interface CertdErrorOptions {
  cause?: unknown;
  /** Overrides the kind's category for this one error. */
  category?: ErrorCategory;
  /** When the caller may try again (e.g. from a CA's Retry-After). */
  retryAfterMs?: number;
}

export class CertdError extends Error {
  readonly code: string;
  readonly category: ErrorCategory;
  readonly retryAfterMs: number | undefined;
  constructor(code: string, message: string, options: CertdErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = new.target.name;
    this.category = options.category ?? (new.target as { category?: ErrorCategory }).category ?? 'internal';
    this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * Makes an error class with a fixed stable code and category; modules define their own kinds with
 * it. Only what the operator cannot fix (our bugs) is 'internal'.
 */
export function errorKind(code: string, category: ErrorCategory) {
  return class extends CertdError {
    static readonly code = code;
    static readonly category = category;
    constructor(message: string, options?: CertdErrorOptions) {
      super(code, message, options);
    }
  };
}

/** The one place where a category becomes an HTTP status and a CLI exit code (DESIGN §3). */
const OUTCOMES: Record<ErrorCategory, { status: number; exit: 1 | 2 }> = {
  input: { status: 400, exit: 2 },
  'too-large': { status: 413, exit: 2 },
  auth: { status: 401, exit: 1 },
  'not-found': { status: 404, exit: 1 },
  conflict: { status: 409, exit: 1 },
  'rate-limited': { status: 429, exit: 1 },
  upstream: { status: 502, exit: 1 },
  unavailable: { status: 503, exit: 1 },
  'storage-full': { status: 507, exit: 1 },
  internal: { status: 500, exit: 1 },
};

/** The category of any thrown value: a CertdError's own, a full disk, else internal. */
export function categoryOf(err: unknown): ErrorCategory {
  if (err instanceof CertdError) return err.category;
  return isDiskFull(err) ? 'storage-full' : 'internal';
}

export function outcomeOf(err: unknown): { status: number; exit: 1 | 2 } {
  return outcomeFor(categoryOf(err));
}

/** The HTTP status and CLI exit code of a category (the CLI's `--help` lists them). */
export function outcomeFor(category: ErrorCategory): { status: number; exit: 1 | 2 } {
  return OUTCOMES[category];
}

/** The category an HTTP status stands for (the CLI reading the daemon's answer). */
export function categoryForStatus(status: number): ErrorCategory {
  const found = (Object.entries(OUTCOMES) as [ErrorCategory, { status: number }][]).find(([, o]) => o.status === status);
  return found?.[0] ?? (status >= 400 && status < 500 ? 'input' : 'internal');
}

/** ENOSPC / EDQUOT anywhere in the cause chain. */
export function isDiskFull(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
  }
  return false;
}

/* Input that we refuse before it reaches a CA, a path or a runtime command. */
export class InvalidNameError extends errorKind('CERTD_E_INVALID_NAME', 'input') {}
export class InvalidPemError extends errorKind('CERTD_E_BAD_PEM', 'input') {}
export class KeyMismatchError extends errorKind('CERTD_E_KEY_MISMATCH', 'input') {}
export class CertExpiredError extends errorKind('CERTD_E_CERT_EXPIRED', 'input') {}
export class CertNotYetValidError extends errorKind('CERTD_E_CERT_NOT_YET_VALID', 'input') {}
/** A CA certificate (basicConstraints CA:TRUE) offered as a leaf. */
export class CertIsCaError extends errorKind('CERTD_E_CERT_IS_CA', 'input') {}
export class TooManyNamesError extends errorKind('CERTD_E_TOO_MANY_NAMES', 'input') {}
export class ConfigError extends errorKind('CERTD_E_CONFIG', 'input') {}
export class UsageError extends errorKind('CERTD_E_USAGE', 'input') {}
export class TooLargeError extends errorKind('CERTD_E_TOO_LARGE', 'too-large') {}
export class NotFoundError extends errorKind('CERTD_E_NOT_FOUND', 'not-found') {}

/* Store. */
export class StoreLockedError extends errorKind('CERTD_E_STORE_LOCKED', 'conflict') {}
export class StoreCorruptError extends errorKind('CERTD_E_STORE_CORRUPT', 'internal') {}
/** A write ran out of disk space; the message says what was applied and what was not. */
export class DiskFullError extends errorKind('CERTD_E_DISK_FULL', 'storage-full') {}

/* Issuers. */
export class IssuerError extends errorKind('CERTD_E_ISSUER', 'upstream') {}

/* HAProxy runtime API, one class per reply kind we act on. */
export class HaproxyUnreachableError extends errorKind('CERTD_E_HAPROXY_UNREACHABLE', 'unavailable') {}
export class HaproxyTimeoutError extends errorKind('CERTD_E_HAPROXY_TIMEOUT', 'unavailable') {}
/** "Operations on certificates are currently locked!": retryable. */
export class HaproxyLockedError extends errorKind('CERTD_E_HAPROXY_LOCKED', 'unavailable') {}
export class HaproxyExistsError extends errorKind('CERTD_E_HAPROXY_EXISTS', 'upstream') {}
export class HaproxyInUseError extends errorKind('CERTD_E_HAPROXY_IN_USE', 'upstream') {}
export class HaproxyNoTransactionError extends errorKind('CERTD_E_HAPROXY_NO_TRANSACTION', 'upstream') {}
/** The reply named another certificate than the one we sent: the 2.6.12 transaction bug. */
export class HaproxyTxnMismatchError extends errorKind('CERTD_E_HAPROXY_TXN_MISMATCH', 'upstream') {}
export class HaproxyNotFoundError extends errorKind('CERTD_E_HAPROXY_NOT_FOUND', 'upstream') {}
export class HaproxyCommandError extends errorKind('CERTD_E_HAPROXY_COMMAND', 'upstream') {}
/** HAProxy answers, but its config does not load what the daemon manages (our crt-list). */
export class HaproxyMisconfiguredError extends errorKind('CERTD_E_HAPROXY_MISCONFIGURED', 'upstream') {}

/* Daemon life. */
/** A start step failed (port taken, store held by another daemon…): the daemon exits. */
export class DaemonStartError extends errorKind('CERTD_E_DAEMON_START', 'unavailable') {}
/** The daemon is stopping or not ready yet. */
export class DaemonNotReadyError extends errorKind('CERTD_E_NOT_READY', 'unavailable') {}

/* API / CLI. */
export class ApiAuthError extends errorKind('CERTD_E_API_AUTH', 'auth') {}
export class ApiError extends errorKind('CERTD_E_API', 'internal') {}

export function errorCode(err: unknown): string | undefined {
  return err instanceof CertdError ? err.code : undefined;
}
