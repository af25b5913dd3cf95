import type { ChildProcess } from 'node:child_process';
import { ManagedHaproxy } from '../../src/haproxy/managed/managed-haproxy.js';

/*
 * Every process a test starts is killed when the test file's process exits, whatever the exit
 * path (a failed assertion, a timeout, an uncaught error): a failed run must leave nothing
 * running. Tests still stop their processes themselves; this is the net under them.
 */
const live = new Set<{ pid?: number }>();
let hooked = false;

function killAll(): void {
  for (const entry of live) {
    if (entry.pid === undefined) continue;
    try {
      process.kill(entry.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  live.clear();
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}

/** Tracks a child until it exits; returns it. */
export function killedAtExit<T extends ChildProcess>(child: T): T {
  hook();
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Tracks a process known by pid only (HAProxy's master under ManagedHaproxy) until `untrack`. */
export function pidKilledAtExit(pid: number): { untrack(): void } {
  hook();
  const entry = { pid };
  live.add(entry);
  return { untrack: () => live.delete(entry) };
}

/** A ManagedHaproxy whose master (each start's) is killed when the test file's process exits. */
export class TrackedHaproxy extends ManagedHaproxy {
  override async start(): Promise<void> {
    await super.start();
    if (this.masterPid !== undefined) pidKilledAtExit(this.masterPid);
  }
}

/** Whether a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops a child: `signal`, then SIGKILL if it has not exited within `graceMs`; resolves once it
 * exited. At once when it already has.
 */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
