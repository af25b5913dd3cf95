import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test/helpers/ports.js';

/** A private Caddy 2.6 serving on-demand certificates from its internal CA on loopback. */
export interface BenchCaddy {
  /** The HTTPS port on 127.0.0.1. */
  port: number;
  /** Caddy's local root (verifies what it serves). */
  rootPem(): Promise<string>;
  /** Stops Caddy (SIGTERM, SIGKILL after 5 s) and removes its temp dir. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 20_000;

/**
 * Caddy 2.6 syntax: `on_demand_tls { ask URL }` is a global option; `tls internal { on_demand }`
 * in the site block; no rate limit is configured (none is applied then). No admin endpoint, no trust-store install, HTTP redirects off (its HTTP port
 * is a free loopback one anyway), and XDG_DATA_HOME / XDG_CONFIG_HOME / HOME in a temp dir, so
 * its CA and certificates never touch the system.
 */
function caddyfile(o: { port: number; httpPort: number; askUrl: string }): string {
  return `{
	admin off
	skip_install_trust
	auto_https disable_redirects
	http_port ${o.httpPort}
	https_port ${o.port}
	on_demand_tls {
		ask ${o.askUrl}
	}
	log {
		level ERROR
	}
}

https://:${o.port} {
	bind 127.0.0.1
	tls internal {
		on_demand
	}
	respond "ok"
}
`;
}

/** Starts `caddy run` (the given binary) and waits until its root exists and its port accepts. */
export async function startCaddy(binary: string, o: { askUrl: string }): Promise<BenchCaddy> {
  const dir = await mkdtemp(join(tmpdir(), 'certd-bench-caddy-'));
  const [port, httpPort] = await Promise.all([freePort(), freePort()]);
  const data = join(dir, 'data');
  const config = join(dir, 'config');
  await Promise.all([mkdir(data), mkdir(config)]);
  const file = join(dir, 'Caddyfile');
  await writeFile(file, caddyfile({ port, httpPort, askUrl: o.askUrl }));
  const child = spawn(binary, ['run', '--config', file, '--adapter', 'caddyfile'], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, XDG_DATA_HOME: data, XDG_CONFIG_HOME: config },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => output.push(c));
  child.stderr!.on('data', (c: Buffer) => output.push(c));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const root = join(data, 'caddy', 'pki', 'authorities', 'local', 'root.crt');
  const stop = async () => {
    await terminate(child, exited);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const deadline = performance.now() + READY_TIMEOUT_MS;
    while (!(existsSync(root) && (await accepts(port)))) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`caddy exited: ${Buffer.concat(output).toString().slice(-2000)}`);
      if (performance.now() > deadline) throw new Error(`caddy not ready within ${READY_TIMEOUT_MS} ms: ${Buffer.concat(output).toString().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, rootPem: () => readFile(root, 'utf8'), stop };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function terminate(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
