import { channel } from 'node:diagnostics_channel';

/**
 * Diagnostics channel of the ACME client and issuer: `bad-nonce-retry` {url, attempt},
 * `account-registered` {issuer, url}. Subscribers (metrics, tests) see what no log line should
 * carry on the hot path.
 */
export const acmeChannel = channel('haproxy-certd:acme');
