import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configFromObject } from '../src/config/load.js';
import type { CertBundle } from '../src/core/bundle.js';
import { certDirLayout } from '../src/haproxy/cert-dir.js';
import { makeDeployEntry } from '../src/haproxy/deploy/entry.js';
import { selfSigned } from './helpers/certs.js';

test('certDirLayout: every path inside certDir from one place, used by the config default and deploy entries', async () => {
  const l = certDirLayout('/etc/haproxy/certd');
  assert.deepEqual(
    [l.crtList, l.knownMap, l.acmeMap, l.luaFile, l.clientCaDir, l.pem('_wildcard.example.com'), l.clientCa('a.example.com')],
    [
      '/etc/haproxy/certd/crt-list.txt',
      '/etc/haproxy/certd/known.map',
      '/etc/haproxy/certd/acme.map',
      '/etc/haproxy/certd/certd-ondemand.lua',
      '/etc/haproxy/certd/ca',
      '/etc/haproxy/certd/_wildcard.example.com.pem',
      '/etc/haproxy/certd/ca/a.example.com.pem',
    ],
  );
  const config = configFromObject({ haproxy: { certDir: '/etc/haproxy/certd' } }, '/srv');
  assert.equal(config.haproxy.crtList, l.crtList);
  const { certPem, keyPem } = await selfSigned('a.example.com');
  const entry = makeDeployEntry(l.certDir, { id: 'a.example.com', bundle: { certPem, keyPem } as CertBundle, sni: [], caFilePem: certPem });
  assert.equal(entry.pemPath, l.pem('a.example.com'));
  assert.equal(entry.caFile?.path, l.clientCa('a.example.com'));
});
