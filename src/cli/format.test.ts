import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatCertList, table } from './format.js';

test('table aligns columns and trims trailing space', () => {
  assert.equal(table(['A', 'BB'], [['xxx', 'y'], ['z', '']]), 'A    BB\nxxx  y\nz');
});

test('cert list sorts by expiry and shows days left', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const base = { issuer: 'internal', origin: 'api' as const, notBefore: '', serial: '', fingerprint: '', updatedAt: '' };
  const out = formatCertList(
    [
      { ...base, id: 'b', names: ['b.test'], notAfter: '2026-01-31T00:00:00.000Z', deployedOn: ['haproxy'] },
      { ...base, id: 'a', names: ['a.test', 'www.a.test'], notAfter: '2025-12-31T00:00:00.000Z', deployedOn: [] },
    ],
    now,
  );
  const lines = out.split('\n');
  assert.match(lines[0]!, /^NAMES\s+ISSUER\s+NOT AFTER \(UTC\)\s+LEFT\s+DEPLOYED ON$/);
  assert.match(lines[1]!, /^a\.test, www\.a\.test\s+internal\s+2025-12-31 00:00\s+EXPIRED\s+-$/);
  assert.match(lines[2]!, /^b\.test\s+internal\s+2026-01-31 00:00\s+30d\s+haproxy$/);
});
