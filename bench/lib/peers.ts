import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The absolute path of `binary` on PATH (or /usr/sbin, /usr/bin), or undefined. */
export function findBinary(binary: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin'].filter(Boolean);
  for (const dir of dirs) {
    const path = join(dir, binary);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

/**
 * The paths of the peer binaries a bench compares against; exits with status 2 and a message
 * naming the Debian packages to install when any is missing (before anything is started).
 */
export function requirePeers(bench: string, wanted: Record<string, string>): Record<string, string> {
  const found: Record<string, string> = {};
  const missing: string[] = [];
  for (const [binary, pkg] of Object.entries(wanted)) {
    const path = findBinary(binary);
    if (path) found[binary] = path;
    else missing.push(`${binary} (Debian package \`${pkg}\`)`);
  }
  if (missing.length > 0) {
    const pkgs = [...new Set(Object.entries(wanted).filter(([b]) => !found[b]).map(([, p]) => p))].join(' ');
    process.stderr.write(
      `${bench}: missing ${missing.join(', ')}.\n${bench}: install as root: apt-get update && apt-get install -y ${pkgs}\n`,
    );
    process.exit(2);
  }
  return found;
}

/** Output of a finished peer command. */
export interface PeerRun {
  ms: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a peer CLI to completion (no shell), timed; throws with the end of its output when it
 * exits non-zero or outlives `timeoutMs`.
 */
export function runPeer(binary: string, args: string[], o: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<PeerRun> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    execFile(
      binary,
      args,
      { env: { ...process.env, ...o.env }, timeout: o.timeoutMs ?? 120_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const ms = performance.now() - t0;
        if (err) reject(new Error(`${binary} ${args.join(' ')} failed (${err.message.split('\n')[0]}):\n${`${stdout}${stderr}`.slice(-2000)}`));
        else resolve({ ms, stdout, stderr });
      },
    );
  });
}
