import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, unlinkSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Loopback ports for the servers tests start. A port the kernel hands out with listen(0) and
 * closes again can be taken before the server binds it: by an outgoing connection (same
 * ephemeral range) or by another test process's listen(0). CI saw HAProxy fail to start on
 * "Address already in use" that way. So ports come from just below the ephemeral range, which
 * connect() never uses, and every process reserves what it hands out with a file in a shared
 * directory (O_EXCL create; a dead owner's reservations are taken over), released at exit.
 */
const reservations = join(tmpdir(), 'certd-test-ports');
const mine: string[] = [];
let released = false;

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 3_000) return low;
  } catch {
    /* not Linux: assume its default */
  }
  return 32_768;
}

const high = ephemeralLow(); // exclusive
const low = Math.max(1_024, high - 12_000);
let next = low + Math.floor(Math.random() * (high - low));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Creates the port's reservation file; false when a live process holds it. */
function reserve(port: number): boolean {
  const file = join(reservations, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o644);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      mine.push(file);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner = NaN;
    try {
      owner = Number(readFileSync(file, 'utf8'));
    } catch {
      /* its owner is just releasing it */
    }
    // An empty file is being written right now: leave it to its owner.
    if (!Number.isInteger(owner) || owner <= 0 || alive(owner)) return false;
    try {
      unlinkSync(file);
    } catch {
      /* another process took it over first */
    }
  }
  return false;
}

function releaseAll(): void {
  if (released) return;
  released = true;
  for (const file of mine) {
    try {
      unlinkSync(file);
    } catch {
      /* already gone */
    }
  }
}
process.once('exit', releaseAll);

function bindable(port: number, udp: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      if (!udp) return srv.close(() => resolve(true));
      const sock = createSocket('udp4');
      sock.once('error', () => srv.close(() => resolve(false)));
      sock.bind(port, '127.0.0.1', () => sock.close(() => srv.close(() => resolve(true))));
    });
  });
}

/**
 * A loopback port reserved for this process until it exits, free on 127.0.0.1 for TCP (and
 * for UDP too with `udp`, as named needs both). Tests never use fixed ports, so they run in
 * parallel with anything else on the machine.
 */
export async function freePort(opts: { udp?: boolean } = {}): Promise<number> {
  mkdirSync(reservations, { recursive: true, mode: 0o1777 });
  for (let tried = 0; tried < high - low; tried++) {
    const port = next;
    next = next + 1 >= high ? low : next + 1;
    if (!reserve(port)) continue;
    if (await bindable(port, opts.udp ?? false)) return port;
    // Taken by something outside the tests: keep the reservation so no one tries it again soon.
  }
  throw new Error(`no free loopback port in ${low}-${high - 1}: ${readdirSync(reservations).length} reserved`);
}
