import { test } from 'node:test';
import assert from 'node:assert/strict';
import { localPatternArgs, onDemandFrontends } from './config.js';

const base = {
  crtList: '/c/crt-list', knownMap: '/c/known.map', luaFile: '/c/l.lua', urls: ['http://127.0.0.1:9180/ondemand'], token: 'tok_en-1',
  maxWaitMs: 2_000, bind: ':443', instanceTag: 'abcd1234',
};
const forge = { caFile: '/c/forge/intermediate.pem', defaultCert: '/c/forge/default.pem', cacheSize: 10 };

test('local decisions: the patterns become the action\'s last two arguments ("-" for no deny)', () => {
  const cfg = onDemandFrontends({ ...base, forge: { ...forge, local: { allow: ['*.a.test', 'b.test'], deny: [] } } }, '');
  assert.match(cfg, /lua\.certd_ondemand_local http:\/\/127\.0\.0\.1:9180\/ondemand tok_en-1 3000 \*\.a\.test,b\.test - if /);
  assert.match(onDemandFrontends({ ...base, forge }, ''), /lua\.certd_ondemand_forge /);
});

test('a pattern that is not a plain DNS pattern never reaches the config; too many patterns keep the synchronous action', () => {
  for (const bad of ['*.a.test if TRUE', 'a.test,b', '*.a.test\nx', 'A.test', '*.*.a', '', '%s.a']) {
    assert.throws(() => localPatternArgs({ allow: [bad], deny: [] }), /cannot be passed to HAProxy/, JSON.stringify(bad));
  }
  const many = Array.from({ length: 200 }, (_, i) => `*.n${i}.example.test`);
  assert.equal(localPatternArgs({ allow: many, deny: [] }), undefined);
  assert.match(onDemandFrontends({ ...base, forge: { ...forge, local: { allow: many, deny: [] } } }, ''), /lua\.certd_ondemand_forge /);
  assert.throws(() => onDemandFrontends({ ...base, token: 'a b' }, ''), /base64url/);
});
