import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killedAtExit } from './children.js';

const SOURCE_MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const BUILT_MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
/** tsx resolved from the repo, so a CLI run with its cwd elsewhere still finds it. */
const TSX = import.meta.resolve('tsx');

/** Whether dist/ was built after the last change to src/ (scripts/bootstrap.sh builds it). */
function buildIsCurrent(): boolean {
  let built: number;
  try {
    built = statSync(BUILT_MAIN).mtimeMs;
  } catch {
    return false;
  }
  const src = fileURLToPath(new URL('../../src', import.meta.url));
  return readdirSync(src, { recursive: true, encoding: 'utf8' }).every((f) => !f.endsWith('.ts') || statSync(join(src, f)).mtimeMs <= built);
}

/**
 * How a test runs the CLI: the build when it is current (half the CPU of compiling the source at
 * every start: what keeps the CLI tests inside their time on a loaded machine), else the source
 * through tsx, so a test never runs stale code.
 */
const CLI_ARGS = buildIsCurrent() ? [BUILT_MAIN] : ['--import', TSX, SOURCE_MAIN];

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI (see CLI_ARGS) and collects its output; bounded by timeoutMs. */
export function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; readerGone?: boolean } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = killedAtExit(
      spawn(process.execPath, [...CLI_ARGS, ...args], {
        cwd: opts.cwd,
        env: { ...process.env, CERTD_LOG_LEVEL: 'warn', ...opts.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    let stdout = '';
    let stderr = '';
    // `readerGone`: stdout's reader has already left (`… | head` after its lines): writes meet EPIPE.
    if (opts.readerGone) child.stdout.destroy();
    else child.stdout.on('data', (d) => (stdout += d));
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
    spawn(process.execPath, [...CLI_ARGS, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, CERTD_LOG_LEVEL: 'info', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
}
