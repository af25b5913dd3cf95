import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Any bench script of this directory, run through node (tsx), e.g. `node --import tsx bench/deploy.ts`. */
const BENCH_PATTERN = 'bench/[a-z0-9-]+\\.ts';
const POLL_MS = 5_000;

/** This process and its ancestors (npm, sh -c): they match the pattern too. */
function ownLineage(): Set<number> {
  const pids = new Set<number>();
  let pid = process.pid;
  while (pid > 1 && !pids.has(pid)) {
    pids.add(pid);
    try {
      // Field 4 of /proc/<pid>/stat, after the parenthesized command name.
      pid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1]);
    } catch {
      break;
    }
  }
  return pids;
}

/** Pids of other running bench scripts (never this one or its parents). */
export function otherBenches(): number[] {
  let out = '';
  try {
    out = execFileSync('pgrep', ['-f', BENCH_PATTERN], { encoding: 'utf8' });
  } catch {
    return []; // pgrep exits 1 when nothing matches.
  }
  const mine = ownLineage();
  return out.split('\n').filter(Boolean).map(Number).filter((pid) => !mine.has(pid));
}

/**
 * Waits until no other bench runs (2 noisy cores: two benches at once would measure each other),
 * up to `maxWaitMs`; then goes on anyway, saying so, since waiting forever helps nobody.
 */
export async function waitForQuiet(log: (line: string) => void, maxWaitMs = 30 * 60_000): Promise<void> {
  const deadline = performance.now() + maxWaitMs;
  let said = false;
  for (;;) {
    const others = otherBenches();
    if (others.length === 0) return;
    if (performance.now() > deadline) {
      log(`other benches still running (pids ${others.join(', ')}) after ${maxWaitMs / 60_000} min: measuring anyway`);
      return;
    }
    if (!said) log(`waiting for other benches to finish (pids ${others.join(', ')})`);
    said = true;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
