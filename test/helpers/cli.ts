import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { killedAtExit } from './children.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
/** tsx resolved from the repo, so a CLI run with its cwd elsewhere still finds it. */
const TSX = import.meta.resolve('tsx');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI from source (no stale build) and collects its output; bounded by timeoutMs. */
export function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = killedAtExit(
      spawn(process.execPath, ['--import', TSX, MAIN, ...args], {
        cwd: opts.cwd,
        env: { ...process.env, CERTD_LOG_LEVEL: 'warn', ...opts.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Spawns the CLI as a long-running process (the daemon); the caller kills it (else it dies with the test file). */
export function spawnCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  return killedAtExit(
    spawn(process.execPath, ['--import', TSX, MAIN, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, CERTD_LOG_LEVEL: 'info', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
}
