import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../src/core/errors.js';
import { formatHostPort, isAnyHost, parseHostPort, tryParseHostPort } from '../src/core/host-port.js';
import { apiBaseUrl } from '../src/daemon/haproxy-snippets.js';
import { socketServes } from '../src/haproxy/assets/existing-config.js';
import { unixSocketPath } from '../src/haproxy/runtime/address.js';

test('parseHostPort reads host:port, [v6]:port and a bare host with a default port', () => {
  assert.deepEqual(parseHostPort('127.0.0.1:9180'), { host: '127.0.0.1', port: 9180 });
  assert.deepEqual(parseHostPort('[::1]:9180'), { host: '::1', port: 9180 });
  assert.deepEqual(parseHostPort('NS1.Example.com:53'), { host: 'ns1.example.com', port: 53 });
  assert.deepEqual(parseHostPort('ns1.example.com', { defaultPort: 53 }), { host: 'ns1.example.com', port: 53 });
  assert.deepEqual(parseHostPort('fd00::53', { defaultPort: 53 }), { host: 'fd00::53', port: 53 });
  assert.deepEqual(parseHostPort('[::]:0', { allowPortZero: true, allowAnyHost: true }), { host: '::', port: 0 });
  assert.deepEqual(parseHostPort(':9180', { allowAnyHost: true }), { host: '', port: 9180 });
  for (const hp of [{ host: '10.0.0.1', port: 1 }, { host: '::1', port: 65535 }, { host: 'a.example', port: 80 }]) {
    assert.deepEqual(parseHostPort(formatHostPort(hp)), hp);
  }
  assert.equal(formatHostPort({ host: '::1', port: 53 }), '[::1]:53');
  assert.ok(isAnyHost('0.0.0.0') && isAnyHost('::') && isAnyHost('') && isAnyHost('*') && !isAnyHost('127.0.0.1'));
});

test('parseHostPort refuses with a ConfigError that says what is wrong', () => {
  const cases: [string, RegExp][] = [
    ['127.0.0.1', /port is missing/],
    ['127.0.0.1:0', /port 0 is out of range \(1-65535\)/],
    ['127.0.0.1:70000', /port 70000 is out of range/],
    ['[127.0.0.1]:1', /brackets are for IPv6/],
    ['::1:53', /in brackets, e\.g\. \[::1\]:53/],
    [':9180', /host is missing/],
    ['bad host:1', /expected host:port/],
    ['bad_host:1', /not an IP address or host name/],
    ['', /host is missing/],
  ];
  for (const [text, why] of cases) {
    assert.throws(() => parseHostPort(text), (err: Error) => err instanceof ConfigError && why.test(err.message) && err.message.includes(JSON.stringify(text)), text);
    assert.equal(tryParseHostPort(text), undefined, text);
  }
});

test('the users of the one parser: API base URL, stats socket lines, master socket path', () => {
  assert.equal(apiBaseUrl('0.0.0.0:9180'), 'http://127.0.0.1:9180');
  assert.equal(apiBaseUrl('[::]:9180'), 'http://[::1]:9180');
  assert.equal(apiBaseUrl('[::1]:9180'), 'http://[::1]:9180');
  assert.equal(apiBaseUrl('localhost:9180'), 'http://localhost:9180');
  assert.ok(socketServes('ipv6@[::1]:9999', 'tcp:[::1]:9999'));
  assert.ok(!socketServes('ipv4@10.0.0.6:9999', 'tcp:10.0.0.5:9999'));
  assert.ok(!socketServes('ipv4@10.0.0.5:9998', 'tcp:10.0.0.5:9999'));
  assert.ok(!socketServes('/run/haproxy/admin.sock', 'tcp:10.0.0.5:9999'));
  assert.equal(unixSocketPath('unix:/run/haproxy-master.sock'), '/run/haproxy-master.sock');
  assert.throws(() => unixSocketPath('tcp:127.0.0.1:9999'), ConfigError);
});
