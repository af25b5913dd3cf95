import { X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AuthorityKeyIdentifier, Certificate, id_ce_authorityKeyIdentifier } from '@peculiar/asn1-x509';
import { InvalidPemError } from '../../core/errors.js';
import { b64u } from './jws.js';
import { parseRetryAfter } from './poll.js';
import { AcmeProblemError } from './problems.js';
import type { RenewalInfo } from './resources.js';

/** RFC 9773 §4.3: without a Retry-After, ask again in about six hours. */
const DEFAULT_RETRY_AFTER_MS = 6 * 3_600_000;

/**
 * The RFC 9773 certificate identifier: base64url(AKI keyIdentifier) "." base64url(serial), the
 * serial as its DER INTEGER content bytes (a leading 0x00 stays). Names the certificate in
 * renewalInfo URLs and in a newOrder's `replaces`. Takes the leaf (the first PEM block).
 * Throws InvalidPemError for unreadable input or a leaf without an AKI keyIdentifier. Pure.
 */
export function ariCertId(certPem: string): string {
  let cert: Certificate;
  try {
    cert = AsnConvert.parse(new X509Certificate(certPem).raw, Certificate);
  } catch (cause) {
    throw new InvalidPemError('the certificate for renewal information does not parse as X.509', { cause });
  }
  const ext = cert.tbsCertificate.extensions?.find((e) => e.extnID === id_ce_authorityKeyIdentifier);
  const keyId = ext ? AsnConvert.parse(ext.extnValue.buffer, AuthorityKeyIdentifier).keyIdentifier : undefined;
  if (!keyId) {
    throw new InvalidPemError('the certificate has no authorityKeyIdentifier keyIdentifier: it cannot be named for ARI');
  }
  return `${b64u(new Uint8Array(keyId.buffer))}.${b64u(new Uint8Array(cert.tbsCertificate.serialNumber))}`;
}

/**
 * Reads a renewalInfo reply. A window that does not parse or ends before it starts is an error:
 * RFC 9773 says to ignore it, which the caller does by falling back to its own schedule. Pure.
 */
export function parseRenewalInfo(json: unknown, retryAfter: string | undefined, now = Date.now()): RenewalInfo {
  const doc = json as { suggestedWindow?: { start?: unknown; end?: unknown }; explanationURL?: unknown } | null;
  const start = typeof doc?.suggestedWindow?.start === 'string' ? new Date(doc.suggestedWindow.start) : undefined;
  const end = typeof doc?.suggestedWindow?.end === 'string' ? new Date(doc.suggestedWindow.end) : undefined;
  if (!start || !end || Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end <= start) {
    throw new AcmeProblemError('the CA sent renewal information without a valid suggestedWindow (start before end)');
  }
  return {
    suggestedWindow: { start, end },
    explanationUrl: typeof doc?.explanationURL === 'string' ? doc.explanationURL : undefined,
    retryAfterMs: parseRetryAfter(retryAfter, now) ?? DEFAULT_RETRY_AFTER_MS,
  };
}
