import { z } from 'zod';
import { duration, MAX_TIMER_MS } from './duration.js';
import { dnsName, doc, flag, hostPortField, httpUrl, nonEmptyList, wholeNumber } from './fields.js';
import { issuerId } from './issuers.js';

/** `www.example.com` or `*.apps.example.com` (one label); SNIs are never IPs, so neither are patterns. */
const namePattern = dnsName({ wildcard: true });

/**
 * The `onDemand:` section: which unknown SNIs may get a certificate during the handshake. The
 * limits are filled in so a handshake flood cannot run an issuer without bound.
 */
export const onDemandSchema = z.strictObject({
  issuer: issuerId.meta(doc('The issuer (an id under issuers) of on-demand certificates.', 'internal')),
  allow: nonEmptyList(namePattern, 'name pattern (e.g. "*.apps.example.com")').meta(
    doc('Names that may get a certificate; `*.apps.example.com` matches every name below apps.example.com, at any depth.', ['*.apps.example.com']),
  ),
  deny: z.array(namePattern).prefault([]).meta(doc('Names refused even when allow matches (same patterns).', ['admin.apps.example.com'])),
  ask: httpUrl()
    .optional()
    .meta(doc('Asked before issuing: `GET <ask>?domain=<name>` must answer 2xx; a timeout, an error or another status refuses. Answers are cached a minute.', 'http://127.0.0.1:9000/allowed')),
  askTimeout: duration({ maxMs: MAX_TIMER_MS }).prefault('2s').meta(doc('How long the ask URL may take to answer.')),
  rateLimit: z
    .strictObject({
      perMinute: wholeNumber('rateLimit.perMinute').prefault(60).meta(doc('New certificates per minute, for everyone together.')),
      burst: wholeNumber('rateLimit.burst').prefault(20).meta(doc('How many may be issued at once before perMinute applies (the bucket size).')),
      perClientPerMinute: wholeNumber('rateLimit.perClientPerMinute').optional().meta(doc('New certificates per minute per client address.', 10)),
    })
    .prefault({})
    .meta(doc('Bounds on issuing, so a flood of random SNIs cannot run an issuer without limit.')),
  maxCertificates: wholeNumber('maxCertificates').meta(doc('The most on-demand certificates kept (required: a cap on what a flood can make).', 10000)),
  replicas: z
    .array(hostPortField())
    .min(1, 'list at least one replica API address (host:port)')
    .max(16, 'at most 16 replicas: each one a dead replica costs is a refused connect in the handshake')
    .optional()
    .meta(
      doc(
        'Active-active: the API address of every replica, in the order HAProxy\'s Lua asks them (it moves to the next on a refused or failed call). Used by the generated HAProxy config; default: this daemon\'s api.listen alone.',
        ['10.0.0.1:9180', '10.0.0.2:9180'],
      ),
    ),
  maxWait: duration({ maxMs: MAX_TIMER_MS })
    .prefault('10s')
    .meta(doc('How long a handshake waits for its certificate before it goes on with the default one (issuing finishes behind).')),
  forge: flag()
    .prefault(false)
    .meta(
      doc(
        'A local-ca issuer only: HAProxy itself signs the first handshake of an approved name (`generate-certificates`, from a short-lived intermediate limited to the allow patterns by nameConstraints) while the daemon issues the real certificate behind; the haproxy-config output gains a second TLS bind. Needs a root made with pathlen 1 (roots made by this version are).',
        true,
      ),
    ),
});
