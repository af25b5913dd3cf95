import { CertdError, type ErrorCategory } from '../../core/errors.js';

/** One entry of a problem document's `subproblems` (RFC 8555 §6.7.1): usually one per identifier. */
export interface AcmeSubproblem {
  type: string;
  detail?: string;
  identifier?: { type: string; value: string };
}

/** An RFC 7807 problem document as ACME servers send it (RFC 8555 §6.7). */
export interface AcmeProblem {
  type: string;
  detail?: string;
  status?: number;
  subproblems?: AcmeSubproblem[];
}

export interface AcmeErrorOptions {
  problem?: AcmeProblem;
  /** From the reply's Retry-After, when it had one. */
  retryAfterMs?: number;
  cause?: unknown;
}

const ACME_ERROR_PREFIX = 'urn:ietf:params:acme:error:';

/**
 * Base of every ACME failure. Carries what the CA said (`problemType`, `detail`, `subproblems`)
 * so an operator sees the CA's own words next to our hint; callers switch on `code`.
 */
export class AcmeError extends CertdError {
  /** The short problem type (`rateLimited`, `unauthorized`…), or the full URI for non-ACME types. */
  readonly problemType: string | undefined;
  readonly detail: string | undefined;
  readonly subproblems: readonly AcmeSubproblem[];

  constructor(code: string, category: ErrorCategory, message: string, opts: AcmeErrorOptions = {}) {
    super(code, message, { cause: opts.cause, category, retryAfterMs: opts.retryAfterMs });
    this.problemType = opts.problem ? shortType(opts.problem.type) : undefined;
    this.detail = opts.problem?.detail;
    this.subproblems = opts.problem?.subproblems ?? [];
  }
}

function acmeKind(code: string, category: ErrorCategory = 'upstream') {
  return class extends AcmeError {
    static readonly code = code;
    constructor(message: string, opts: AcmeErrorOptions = {}) {
      super(code, category, message, opts);
    }
  };
}

/** Any ACME failure without a more specific kind (serverInternal, orderNotReady, a reply we cannot read…). */
export class AcmeProblemError extends acmeKind('CERTD_E_ACME') {}
/** rateLimited: wait `retryAfterMs` (when the CA said) before trying again. */
export class AcmeRateLimitedError extends acmeKind('CERTD_E_ACME_RATE_LIMITED', 'rate-limited') {}
/** badNonce even after our retries with fresh nonces. */
export class AcmeBadNonceError extends acmeKind('CERTD_E_ACME_BAD_NONCE') {}
/** unauthorized / incorrectResponse: the CA did not see the challenge response it expected. */
export class AcmeUnauthorizedError extends acmeKind('CERTD_E_ACME_UNAUTHORIZED') {}
/** dns: the CA could not resolve the name (or the _acme-challenge TXT record). */
export class AcmeDnsError extends acmeKind('CERTD_E_ACME_DNS') {}
/** connection / tls: the CA could not connect to the name to validate it. */
export class AcmeConnectionError extends acmeKind('CERTD_E_ACME_CONNECTION') {}
/** rejectedIdentifier / unsupportedIdentifier / caa: the CA will not issue for this name. */
export class AcmeRejectedIdentifierError extends acmeKind('CERTD_E_ACME_REJECTED_IDENTIFIER') {}
/** externalAccountRequired, or the CA refused our external account binding. */
export class AcmeEabError extends acmeKind('CERTD_E_ACME_EAB') {}
/** malformed / badCSR / badPublicKey / badSignatureAlgorithm: the CA refused what we sent. */
export class AcmeMalformedError extends acmeKind('CERTD_E_ACME_MALFORMED') {}
/** The CA could not be reached: connection refused, DNS failure, TLS failure, request timeout. */
export class AcmeUnreachableError extends acmeKind('CERTD_E_ACME_UNREACHABLE', 'unavailable') {}
/** An authorization or order did not settle within our bound. */
export class AcmeTimeoutError extends acmeKind('CERTD_E_ACME_TIMEOUT') {}
/**
 * No challenge we can answer: a wildcard or IP with the wrong challenge type, no solver configured,
 * or the CA did not offer the configured type for a name.
 */
export class AcmeChallengeError extends acmeKind('CERTD_E_ACME_CHALLENGE', 'input') {}

/** `urn:ietf:params:acme:error:rateLimited` → `rateLimited`; other URIs stay whole. Pure. */
export function shortType(type: string): string {
  return type.startsWith(ACME_ERROR_PREFIX) ? type.slice(ACME_ERROR_PREFIX.length) : type;
}

type Kind = new (message: string, opts?: AcmeErrorOptions) => AcmeError;

/* What to do next, per kind: the CA's detail says what happened, this says what to change. */
const KINDS: Record<string, { kind: Kind; hint: string }> = {
  rateLimited: { kind: AcmeRateLimitedError, hint: 'the CA rate-limited this account or name; wait before retrying' },
  badNonce: { kind: AcmeBadNonceError, hint: 'the CA kept rejecting our nonces; retry later' },
  unauthorized: {
    kind: AcmeUnauthorizedError,
    hint: 'check that the challenge response is reachable from the CA (port 80 for http-01, the TXT record for dns-01)',
  },
  incorrectResponse: {
    kind: AcmeUnauthorizedError,
    hint: 'the CA fetched a wrong challenge response; check that every server behind the name answers it',
  },
  dns: { kind: AcmeDnsError, hint: 'the CA could not resolve the name; check its DNS records' },
  connection: { kind: AcmeConnectionError, hint: 'the CA could not connect to the name; check firewalls and DNS' },
  tls: { kind: AcmeConnectionError, hint: 'the CA failed a TLS connection to the name' },
  rejectedIdentifier: { kind: AcmeRejectedIdentifierError, hint: 'the CA will not issue for this name' },
  unsupportedIdentifier: { kind: AcmeRejectedIdentifierError, hint: 'the CA does not issue for this kind of name' },
  caa: { kind: AcmeRejectedIdentifierError, hint: "the name's CAA records do not allow this CA" },
  externalAccountRequired: {
    kind: AcmeEabError,
    hint: 'the CA requires external account binding: set eab: { kid, hmacKey } from your CA account',
  },
  malformed: { kind: AcmeMalformedError, hint: 'the CA refused our request as malformed' },
  badCSR: { kind: AcmeMalformedError, hint: 'the CA refused the CSR (key type or names)' },
  badPublicKey: { kind: AcmeMalformedError, hint: 'the CA refused the key type' },
  badSignatureAlgorithm: { kind: AcmeMalformedError, hint: 'the CA refused our signature algorithm' },
};

/**
 * Turns a problem document into the typed error for its kind. `context` says what we were doing
 * ("new order for a.example"); the message is `<context>: <CA detail> (<type>); <hint>`, with
 * the subproblems' details appended, since they name the identifier that failed. Pure.
 */
export function problemError(problem: AcmeProblem, context: string, extra: Omit<AcmeErrorOptions, 'problem'> = {}): AcmeError {
  const type = shortType(problem.type);
  const entry = KINDS[type];
  const subs = (problem.subproblems ?? [])
    .map((s) => `${s.identifier?.value ?? '?'}: ${s.detail ?? shortType(s.type)}`)
    .join('; ');
  let message = `${context}: ${problem.detail ?? 'no detail'} (${type})`;
  if (subs) message += ` [${subs}]`;
  if (entry) message += `; ${entry.hint}`;
  if (extra.retryAfterMs !== undefined) message += ` (retry after ${Math.ceil(extra.retryAfterMs / 1000)} s)`;
  const Kind = entry?.kind ?? AcmeProblemError;
  return new Kind(message, { ...extra, problem });
}

/**
 * Reads a problem document from a reply body; replies that are not one (an HTML error page from a
 * proxy) become a generic `serverInternal`-like problem carrying the HTTP status. Pure.
 */
export function parseProblem(status: number, body: Buffer): AcmeProblem {
  try {
    const doc = JSON.parse(body.toString('utf8')) as unknown;
    if (doc && typeof doc === 'object' && typeof (doc as { type?: unknown }).type === 'string') {
      const p = doc as Record<string, unknown>;
      return {
        type: p.type as string,
        detail: typeof p.detail === 'string' ? p.detail : undefined,
        status: typeof p.status === 'number' ? p.status : status,
        subproblems: Array.isArray(p.subproblems) ? (p.subproblems as AcmeSubproblem[]).filter(isSubproblem) : undefined,
      };
    }
  } catch {
    // Not JSON: described below from the status alone.
  }
  const text = body.toString('utf8').replace(/\s+/g, ' ').trim().slice(0, 200);
  return { type: 'about:blank', detail: `HTTP ${status}${text ? `: ${text}` : ''}`, status };
}

function isSubproblem(s: unknown): s is AcmeSubproblem {
  return Boolean(s) && typeof (s as AcmeSubproblem).type === 'string';
}
