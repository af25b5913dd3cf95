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
