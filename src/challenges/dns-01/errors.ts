import { errorKind } from '../../core/errors.js';

/**
 * The server would not apply the update as configured (REFUSED, NOTAUTH without a TSIG error,
 * NOTZONE): a policy or zone problem the operator fixes on the server or in certd.yaml.
 */
export class DnsUpdateRefusedError extends errorKind('CERTD_E_DNS_UPDATE_REFUSED', 'upstream') {
  /** The DNS rcode name, e.g. REFUSED. */
  readonly rcode: string;
  constructor(rcode: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.rcode = rcode;
  }
}

/**
 * TSIG failed: the server rejected our signature (BADSIG, BADKEY, BADTIME… in its TSIG error
 * field) or its reply did not verify with our key. Retrying does not help; the key or the clock
 * needs fixing.
 */
export class DnsTsigError extends errorKind('CERTD_E_DNS_TSIG', 'upstream') {
  /** BADSIG, BADKEY, BADTIME, BADTRUNC…, or UNSIGNED when a reply carried no signature. */
  readonly tsigError: string;
  constructor(tsigError: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.tsigError = tsigError;
  }
}

/** No answer from the DNS server within the bound (timed out, or nothing listening). */
export class DnsTimeoutError extends errorKind('CERTD_E_DNS_TIMEOUT', 'upstream') {}

/** Any other DNS failure: SERVFAIL, FORMERR, a malformed reply, a TXT value we cannot send. */
export class DnsUpdateError extends errorKind('CERTD_E_DNS_UPDATE', 'upstream') {
  /** The DNS rcode name when the server answered with one. */
  readonly rcode: string | undefined;
  constructor(message: string, options?: { cause?: unknown; rcode?: string }) {
    super(message, options);
    this.rcode = options?.rcode;
  }
}

/** A `_acme-challenge` CNAME chain that loops or is longer than we follow: fix the CNAMEs. */
export class DnsCnameError extends errorKind('CERTD_E_DNS_CNAME', 'input') {}

/** No configured solver's zones contain the name (or its CNAME target): add the zone to a solver. */
export class DnsNoSolverError extends errorKind('CERTD_E_DNS_NO_SOLVER', 'input') {}

/** The exec hook exited non-zero, was killed at its timeout, or could not be started. */
export class DnsHookError extends errorKind('CERTD_E_DNS_HOOK', 'upstream') {}

/** An authoritative server did not serve the record within the propagation bound. */
export class DnsPropagationError extends errorKind('CERTD_E_DNS_PROPAGATION', 'upstream') {
  /** `host:port` of every server that had not served the value when the wait ended. */
  readonly lagging: string[];
  constructor(message: string, lagging: string[], options?: { cause?: unknown }) {
    super(message, options);
    this.lagging = lagging;
  }
}
