import type { StoredCert } from '../../src/store/store.js';

/**
 * A stored certificate for store tests: placeholder PEMs (the store checks shapes, not X.509) whose
 * texts carry `tag` and the id, so a test can tell versions and records apart, even in a dump.
 */
export function storedCert(id: string, tag = 'v1', moreNames: string[] = []): StoredCert {
  return {
    certPem: `-----BEGIN CERTIFICATE-----\n${tag}-cert\n-----END CERTIFICATE-----\n`,
    keyPem: `-----BEGIN PRIVATE KEY-----\n${tag}-key-${id}\n-----END PRIVATE KEY-----\n`,
    meta: {
      id,
      names: [id.replace(/^_wildcard\./, '*.'), ...moreNames],
      issuer: 'internal',
      origin: 'api',
      notBefore: '2025-01-01T00:00:00.000Z',
      notAfter: '2025-02-01T00:00:00.000Z',
      serial: `${tag}-serial`,
      fingerprint: `${tag}-fp`,
      updatedAt: '2025-01-01T00:00:00.000Z',
    },
  };
}
