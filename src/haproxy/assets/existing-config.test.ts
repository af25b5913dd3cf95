import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readExistingConfig, socketServes } from './existing-config.js';

test('readExistingConfig: sections, global stats sockets (with their level) and lua-loads; comments ignored', () => {
  const found = readExistingConfig(`global
\tstats socket /run/haproxy/admin.sock mode 660 level admin
    stats socket ipv4@127.0.0.1:9999 level operator   # not admin
    lua-load /etc/haproxy/certd/certd-ondemand.lua
# frontend commented
defaults
    stats socket /not/global.sock level admin
frontend certd_sni
backend web
listen stats
`);
  assert.deepEqual([...found.sections], ['frontend certd_sni', 'backend web', 'listen stats']);
  assert.deepEqual(found.statsSockets, [
    { address: '/run/haproxy/admin.sock', admin: true },
    { address: 'ipv4@127.0.0.1:9999', admin: false },
  ]);
  assert.deepEqual(found.luaLoads, ['/etc/haproxy/certd/certd-ondemand.lua']);
});

test('socketServes: the same unix path, or the same TCP port on that host or on every address', () => {
  assert.ok(socketServes('/run/haproxy/admin.sock', 'unix:/run/haproxy/admin.sock'));
  assert.ok(socketServes('unix@/run/haproxy/admin.sock', 'unix:/run/haproxy/admin.sock'));
  assert.ok(!socketServes('/run/haproxy/other.sock', 'unix:/run/haproxy/admin.sock'));
  for (const have of ['ipv4@10.0.0.5:9999', 'ipv4@0.0.0.0:9999', ':9999', '*:9999', 'ipv6@[::]:9999']) assert.ok(socketServes(have, 'tcp:10.0.0.5:9999'), have);
  assert.ok(socketServes('ipv6@::1:9999', 'tcp:[::1]:9999'));
  assert.ok(!socketServes('ipv4@10.0.0.6:9999', 'tcp:10.0.0.5:9999'));
  assert.ok(!socketServes('ipv4@10.0.0.5:9998', 'tcp:10.0.0.5:9999'));
});
