import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort } from './helpers/ports.js';

const reservations = join(tmpdir(), 'certd-test-ports');
const ephemeralLow = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);

test('test ports come from below the ephemeral range, each reserved for this process', async () => {
  const ports = [];
  for (let i = 0; i < 40; i++) ports.push(await freePort({ udp: i % 2 === 0 }));
  assert.equal(new Set(ports).size, ports.length, 'no port handed out twice');
  for (const port of ports) {
    assert.ok(port >= 1_024 && port < ephemeralLow, `${port} is below ${ephemeralLow}`);
    assert.equal(readFileSync(join(reservations, String(port)), 'utf8'), String(process.pid));
  }
});

test("another process's reservations are released when it exits", async () => {
  const script = "import('./test/helpers/ports.ts').then(async (m) => console.log(await m.freePort(), await m.freePort()))";
  const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8' });
  const ports = out.trim().split(' ').map(Number);
  assert.equal(ports.length, 2);
  for (const port of ports) assert.equal(existsSync(join(reservations, String(port))), false, `${port} released`);
});
