import { z } from 'zod';
import { duration, MAX_TIMER_MS } from './duration.js';
import { dnsName, httpUrl, identifier, nonEmptyList, wholeNumber } from './fields.js';

/** `www.example.com` or `*.apps.example.com` (one label); SNIs are never IPs, so neither are patterns. */
const namePattern = dnsName({ wildcard: true });

/**
 * The `onDemand:` section: which unknown SNIs may get a certificate during the handshake. The
 * limits are filled in so a handshake flood cannot run an issuer without bound.
 */
export const onDemandSchema = z.strictObject({
  issuer: identifier('an issuer id'),
  allow: nonEmptyList(namePattern, 'name pattern (e.g. "*.apps.example.com")'),
  deny: z.array(namePattern).prefault([]),
  /** Asked before issuing, so a service that knows the tenants can veto a name. */
  ask: httpUrl().optional(),
  askTimeout: duration({ maxMs: MAX_TIMER_MS }).prefault('2s'),
  rateLimit: z
    .strictObject({
      perMinute: wholeNumber('rateLimit.perMinute').default(60),
      burst: wholeNumber('rateLimit.burst').default(20),
      perClientPerMinute: wholeNumber('rateLimit.perClientPerMinute').optional(),
    })
    .prefault({}),
  maxCertificates: wholeNumber('maxCertificates'),
  /** How long a handshake waits for its certificate before it gets the default one. */
  maxWait: duration({ maxMs: MAX_TIMER_MS }).prefault('10s'),
});
