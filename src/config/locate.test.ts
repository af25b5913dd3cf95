import { test } from 'node:test';
import assert from 'node:assert/strict';
import { locateConfig } from './locate.js';

const at = (...present: string[]) => (p: string) => present.includes(p);

test('config search order: --config, CERTD_CONFIG, ./certd.yaml, /etc/haproxy-certd/certd.yaml', () => {
  const base = { cwd: '/srv/app', systemPath: '/etc/haproxy-certd/certd.yaml' };
  const both = at('/srv/app/certd.yaml', '/etc/haproxy-certd/certd.yaml');
  assert.equal(locateConfig({ ...base, flag: 'mine.yaml', env: { CERTD_CONFIG: '/env.yaml' }, exists: both }), 'mine.yaml');
  assert.equal(locateConfig({ ...base, env: { CERTD_CONFIG: '/env.yaml' }, exists: both }), '/env.yaml');
  assert.equal(locateConfig({ ...base, env: {}, exists: both }), '/srv/app/certd.yaml');
  assert.equal(locateConfig({ ...base, env: { CERTD_CONFIG: '' }, exists: at('/etc/haproxy-certd/certd.yaml') }), '/etc/haproxy-certd/certd.yaml');
  // Named but missing: returned anyway, so loading it fails loudly instead of using another file.
  assert.equal(locateConfig({ ...base, env: { CERTD_CONFIG: '/typo.yaml' }, exists: both }), '/typo.yaml');
  assert.throws(() => locateConfig({ ...base, env: {}, exists: at() }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'CERTD_E_CONFIG');
    assert.match(err.message, /looked for \/srv\/app\/certd\.yaml and \/etc\/haproxy-certd\/certd\.yaml; pass --config FILE or set CERTD_CONFIG/);
    return true;
  });
});
