import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EXPIRES_SOON_DAYS } from '../core/expiry.js';
import { certFilter } from './cert-filter.js';
import { formatCertList, table, useColour } from './format.js';

test('table aligns columns and trims trailing space', () => {
  assert.equal(table(['A', 'BB'], [['xxx', 'y'], ['z', '']]), 'A    BB\nxxx  y\nz');
});

test('cert list sorts by expiry and shows days left', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const base = { issuer: 'internal', origin: 'api' as const, notBefore: '', serial: '', fingerprint: '', updatedAt: '', renewable: true };
  const out = formatCertList(
    [
      { ...base, id: 'b', names: ['b.test'], notAfter: '2026-01-31T00:00:00.000Z', deployedOn: ['haproxy'] },
      { ...base, id: 'a', names: ['a.test', 'www.a.test'], notAfter: '2025-12-31T00:00:00.000Z', deployedOn: [] },
    ],
    { now },
  );
  const lines = out.split('\n');
  assert.match(lines[0]!, /^NAMES\s+ISSUER\s+ORIGIN\s+NOT AFTER \(UTC\)\s+LEFT\s+DEPLOYED ON$/);
  assert.match(lines[1]!, /^a\.test, www\.a\.test\s+internal\s+api\s+2025-12-31 00:00\s+EXPIRED\s+-$/);
  assert.match(lines[2]!, /^b\.test\s+internal\s+api\s+2026-01-31 00:00\s+30d\s+haproxy$/);
});

const now = Date.parse('2026-01-01T00:00:00Z');
const cert = (id: string, names: string[], daysLeft: number, more: { issuer?: string; origin?: 'api' | 'config' | 'import' } = {}) => ({
  id,
  names,
  issuer: more.issuer ?? 'internal',
  origin: more.origin ?? ('api' as const),
  notBefore: '',
  notAfter: new Date(now + daysLeft * 86_400_000 + 3_600_000).toISOString(),
  serial: '',
  fingerprint: '',
  updatedAt: '',
  deployedOn: [],
  renewable: true,
});

test('a table wider than the terminal cuts the names column, every line fits', () => {
  // 88: the 80 this test had before ORIGIN took its 8 columns.
  const out = formatCertList([cert('a', Array.from({ length: 20 }, (_, i) => `n${i}.wide.test`), 30)], { now, width: 88 });
  for (const line of out.split('\n')) assert.ok(line.length <= 88, line);
  assert.match(out, /n0\.wide\.test, n1\.wide\.test.*…\s+internal\s+api\s+/, 'ORIGIN is never cut');
  assert.equal(formatCertList([cert('a', ['a.test'], 30)], { now, width: 10 }).split('\n')[1]!.startsWith('a.test'), true, 'a short name is not cut even when the line cannot fit');
});

test('colour marks expired red and expiring-soon yellow, and keeps the columns aligned', () => {
  const certs = [cert('old', ['old.test'], -2), cert('soon', ['soon.test'], EXPIRES_SOON_DAYS - 1), cert('ok', ['ok.test'], EXPIRES_SOON_DAYS + 1)];
  const plain = formatCertList(certs, { now });
  const coloured = formatCertList(certs, { now, colour: true });
  assert.doesNotMatch(plain, /\x1b/);
  const lines = coloured.split('\n');
  assert.match(lines[1]!, /\x1b\[31mEXPIRED/);
  assert.match(lines[2]!, new RegExp(`\\x1b\\[33m${EXPIRES_SOON_DAYS - 1}d`));
  assert.doesNotMatch(lines[3]!, /\x1b/);
  assert.equal(coloured.replace(/\x1b\[\d+m/g, ''), plain);
});

test('colour only on a terminal, and never with NO_COLOR set', () => {
  assert.equal(useColour({ isTTY: true }, {}), true);
  assert.equal(useColour({ isTTY: true }, { NO_COLOR: '1' }), false);
  assert.equal(useColour({ isTTY: false }, {}), false);
  assert.equal(useColour({}, {}), false);
});

test('list filters: glob over every name, expiring within, issuer, origin, combined', () => {
  const certs = [
    cert('a.example.com', ['a.example.com', 'www.a.example.com'], 5, { origin: 'config' }),
    cert('b.example.org', ['b.example.org'], 40, { issuer: 'le' }),
    cert('imported.test', ['imported.test'], 60, { issuer: 'import', origin: 'import' }),
  ];
  const ids = (o: Parameters<typeof certFilter>[0]) => certs.filter(certFilter(o, now)).map((c) => c.id);
  assert.deepEqual(ids({}), ['a.example.com', 'b.example.org', 'imported.test']);
  assert.deepEqual(ids({ glob: 'www.*' }), ['a.example.com']);
  assert.deepEqual(ids({ glob: '*.EXAMPLE.???' }), ['a.example.com', 'b.example.org']);
  assert.deepEqual(ids({ glob: 'a.example.co' }), [], 'anchored');
  assert.deepEqual(ids({ glob: 'a?example.com' }), ['a.example.com']);
  assert.deepEqual(ids({ glob: 'a.example+com' }), [], 'other characters are literal');
  assert.deepEqual(ids({ expiring: '14d' }), ['a.example.com']);
  assert.deepEqual(ids({ expiring: '45d' }), ['a.example.com', 'b.example.org']);
  assert.deepEqual(ids({ issuer: 'le' }), ['b.example.org']);
  assert.deepEqual(ids({ origin: 'import' }), ['imported.test']);
  assert.deepEqual(ids({ glob: '*.example.*', expiring: '90d', origin: 'config' }), ['a.example.com']);
  assert.throws(() => certFilter({ expiring: 'two weeks' }), /CERTD_E_USAGE|--expiring "two weeks": expected a duration/);
});
