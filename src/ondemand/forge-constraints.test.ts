import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forgeConstraints, permittedBy } from './forge-constraints.js';
import { matchesAny } from './patterns.js';

test('a wildcard pattern becomes a leading-dot subtree: below the name, not the name itself', () => {
  const c = forgeConstraints(['*.gen.test'], []);
  assert.deepEqual(c.permitted, ['.gen.test']);
  assert.deepEqual(c.excluded, []);
  assert.deepEqual(c.inexact, []);
  assert.equal(permittedBy(c, 'a.gen.test'), true);
  assert.equal(permittedBy(c, 'x.y.gen.test'), true);
  assert.equal(permittedBy(c, 'gen.test'), false);
  assert.equal(permittedBy(c, 'evilgen.test'), false);
  assert.equal(permittedBy(c, 'evil.other.test'), false);
});

test('an exact allowed name is permitted, widened to the names below it (reported as inexact)', () => {
  const c = forgeConstraints(['www.example.test', '*.apps.example.test'], []);
  assert.deepEqual(c.permitted, ['www.example.test', '.apps.example.test']);
  assert.equal(permittedBy(c, 'www.example.test'), true);
  assert.equal(permittedBy(c, 'x.www.example.test'), true);
  assert.deepEqual(c.inexact.map((i) => [i.list, i.pattern]), [['allow', 'www.example.test']]);
});

test('a wildcard deny inside a permitted subtree is excluded; one outside every subtree is left out', () => {
  const c = forgeConstraints(['*.gen.test'], ['*.blocked.gen.test', '*.other.test']);
  assert.deepEqual(c.excluded, ['.blocked.gen.test']);
  assert.equal(permittedBy(c, 'a.blocked.gen.test'), false);
  assert.equal(permittedBy(c, 'blocked.gen.test'), true, 'the pattern does not deny its apex, nor does the subtree');
});

test('an exact deny cannot be excluded without the names below it: not excluded, reported', () => {
  const c = forgeConstraints(['*.gen.test'], ['admin.gen.test']);
  assert.deepEqual(c.excluded, []);
  assert.deepEqual(c.inexact.map((i) => [i.list, i.pattern]), [['deny', 'admin.gen.test']]);
  assert.match(c.inexact[0]!.why, /daemon refuses it/);
});

test('a permitted subtree wholly denied is dropped, unless it is the only one', () => {
  const both = forgeConstraints(['*.a.gen.test', '*.b.test'], ['*.gen.test']);
  assert.deepEqual(both.permitted, ['.b.test']);
  const only = forgeConstraints(['*.a.gen.test'], ['*.gen.test']);
  assert.deepEqual(only.permitted, ['.a.gen.test']);
  assert.deepEqual(only.excluded, ['.gen.test']);
  assert.equal(permittedBy(only, 'x.a.gen.test'), false, 'nothing verifies, as nothing is allowed');
});

test('duplicates collapse; every name the policy admits is permitted (and the deny subtrees hold)', () => {
  const allow = ['*.gen.test', '*.gen.test', 'exact.example.test', '*.deep.zone.example.test'];
  const deny = ['*.no.gen.test', 'exact2.gen.test'];
  const c = forgeConstraints(allow, deny);
  assert.deepEqual(c.permitted, ['.gen.test', 'exact.example.test', '.deep.zone.example.test']);
  const names = ['a.gen.test', 'a.no.gen.test', 'no.gen.test', 'exact.example.test', 'b.deep.zone.example.test', 'exact2.gen.test', 'z.other.test'];
  for (const n of names) {
    const admitted = matchesAny(n, allow) && !matchesAny(n, deny);
    if (admitted) assert.equal(permittedBy(c, n), true, `${n} is admitted by the policy, so it must verify`);
    if (matchesAny(n, ['*.no.gen.test'])) assert.equal(permittedBy(c, n), false, `${n} is under a denied subtree`);
  }
});
