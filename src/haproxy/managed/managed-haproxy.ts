import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { sleep, withTimeout } from '../../core/async.js';
import { errorKind, HaproxyUnreachableError } from '../../core/errors.js';
import { RuntimeClient } from '../runtime/client.js';
import { masterCommand } from '../runtime/master-cli.js';
import { parseInfo } from '../runtime/reply.js';

/** HAProxy did not come up: the message carries HAProxy's own ALERT lines. */
export class HaproxyStartError extends errorKind('CERTD_E_HAPROXY_START', 'unavailable') {}

export interface ManagedHaproxyOptions {
  /** The configuration HAProxy reads; the caller writes it (or passes configText). */
  configFile: string;
  /** When given, written to configFile before every start. */
  configText?: string;
  /** Master CLI socket path (`-S`): used to find the worker and to wait for it. */
  masterSocket: string;
  /** A `stats socket` of the config (path or runtime address): start waits until it answers. */
  runtimeSocket?: string;
  /** HAProxy binary (default: haproxyBinary()). */
  binary?: string;
  /** Bound on start and reload (default 15000 ms). */
  startTimeoutMs?: number;
  /** Bound on a graceful stop before SIGKILL (default 5000 ms). */
  stopTimeoutMs?: number;
}

const KEEP_LINES = 500;

/**
 * Spawns and supervises `haproxy -W -db -f <cfg> -S <master socket>` (master-worker, foreground)
 * for the demo and tests. It runs what the caller configured; it never generates product config.
 * Not for concurrent use: await start/stop/kill/restart/reload one at a time. Reads (workerPid,
 * output) are safe at any time.
 */
export class ManagedHaproxy {
  private readonly o: ManagedHaproxyOptions & { startTimeoutMs: number; stopTimeoutMs: number };
  private child?: ChildProcess;
  private exited?: Promise<void>;
  private lines: string[] = [];
  private lastWorkerPid?: number;
  private exitListeners: ((code: number | null, signal: NodeJS.Signals | null) => void)[] = [];

  constructor(options: ManagedHaproxyOptions) {
    this.o = { startTimeoutMs: 15_000, stopTimeoutMs: 5_000, ...options };
  }

  /** The master's pid while it runs. */
  get masterPid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    const c = this.child;
    return c !== undefined && c.pid !== undefined && c.exitCode === null && c.signalCode === null;
  }

  /** The last lines HAProxy printed (stdout and stderr), oldest first. */
  output(): string[] {
    return [...this.lines];
  }

  /** Called when the master exits, expectedly or not. */
  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void {
    this.exitListeners.push(listener);
  }

  /**
   * Starts HAProxy and resolves once its worker answers (on the runtime socket when configured).
   * Throws HaproxyStartError with HAProxy's own error lines if it exits or doesn't answer in time.
   */
  async start(): Promise<void> {
    if (this.running) throw new HaproxyStartError(`haproxy is already running (master pid ${this.child!.pid})`);
    if (this.o.configText !== undefined) await writeFile(this.o.configFile, this.o.configText);
    this.lines = [];
    const child = spawn(this.binary(), ['-W', '-db', '-f', this.o.configFile, '-S', this.o.masterSocket], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        this.lines.push(line);
        if (this.lines.length > KEEP_LINES) this.lines.shift();
      });
    }
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        for (const l of this.exitListeners) l(code, signal);
        resolve();
      });
    });
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    try {
      const pid = await Promise.race([this.waitForWorker(undefined), spawnError.then((e) => Promise.reject(e))]);
      this.lastWorkerPid = pid;
    } catch (err) {
      await this.kill();
      throw err instanceof HaproxyStartError ? err : new HaproxyStartError(`haproxy did not start: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The current worker's pid, from `show info` through the master CLI. */
  async workerPid(): Promise<number> {
    if (!this.running) throw new HaproxyUnreachableError('managed haproxy is not running');
    const pid = parseInfo(await masterCommand(this.o.masterSocket, '@1 show info')).pid;
    this.lastWorkerPid = pid;
    return pid;
  }

  /**
   * Stops HAProxy: SIGTERM (hard stop) or, with `graceful`, SIGUSR1 (finish open connections),
   * then SIGKILL if it is still there after stopTimeoutMs. Resolves once the master has exited.
   */
  async stop(options: { graceful?: boolean } = {}): Promise<void> {
    if (!this.running) return;
    this.child!.kill(options.graceful ? 'SIGUSR1' : 'SIGTERM');
    if (await this.exitedWithin(this.o.stopTimeoutMs)) return;
    await this.kill();
  }

  /** SIGKILL to worker and master, as a crash would (tests). Resolves once both are gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    // Only while the master runs is the worker pid surely still ours (not reused by the kernel).
    const worker = this.lastWorkerPid;
    if (worker !== undefined) signalQuietly(worker, 'SIGKILL');
    this.child!.kill('SIGKILL');
    await this.exited;
    if (worker !== undefined) await waitGone(worker, 2_000);
  }

  /** stop() then start(): a new master and worker, with none of the runtime changes. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /**
   * SIGUSR2: the master re-reads the configuration and forks a new worker (the old one finishes
   * its connections). Resolves with the new worker's pid once it answers.
   */
  async reload(): Promise<number> {
    if (!this.running) throw new HaproxyUnreachableError('managed haproxy is not running');
    const before = await this.workerPid();
    if (this.o.configText !== undefined) await writeFile(this.o.configFile, this.o.configText);
    this.child!.kill('SIGUSR2');
    const pid = await this.waitForWorker(before);
    this.lastWorkerPid = pid;
    return pid;
  }

  /** Polls until a worker other than `previous` answers on the master CLI (and runtime socket). */
  private async waitForWorker(previous: number | undefined): Promise<number> {
    const deadline = performance.now() + this.o.startTimeoutMs;
    let last: unknown;
    while (performance.now() < deadline) {
      if (!this.running) {
        throw new HaproxyStartError(`haproxy exited during start (${this.child?.exitCode ?? this.child?.signalCode}): ${this.alerts()}`);
      }
      try {
        const pid = parseInfo(await masterCommand(this.o.masterSocket, '@1 show info', 1_000)).pid;
        // Another HAProxy may still own the runtime socket path: accept only our worker's answer.
        if (pid !== previous && (!this.o.runtimeSocket || (await this.runtimePid()) === pid)) return pid;
      } catch (err) {
        last = err;
      }
      await sleep(50);
    }
    throw new HaproxyStartError(
      `haproxy did not answer within ${this.o.startTimeoutMs} ms (${(last as Error | undefined)?.message ?? 'no new worker yet'}): ${this.alerts()}`,
    );
  }

  private async runtimePid(): Promise<number> {
    const client = new RuntimeClient(this.o.runtimeSocket!, { connectAttempts: 1, connectTimeoutMs: 500, abortStaleTransactions: false });
    try {
      return (await client.showInfo({ timeoutMs: 1_000 })).pid;
    } finally {
      client.close();
    }
  }

  private exitedWithin(ms: number): Promise<boolean> {
    return withTimeout(this.exited!.then(() => true), ms, () => false);
  }

  /** HAProxy's ALERT lines (or its last lines), for error messages. */
  private alerts(): string {
    const alerts = this.lines.filter((l) => /\[ALERT\]/.test(l));
    return (alerts.length > 0 ? alerts : this.lines.slice(-5)).join(' | ') || '(no output)';
  }

  private binary(): string {
    return this.o.binary ?? haproxyBinary();
  }
}

/**
 * The HAProxy the demo, tests and benchmarks run: CERTD_HAPROXY_BIN when set (the version matrix
 * points it at a launcher from scripts/haproxy-versions.sh), else /usr/sbin/haproxy when present,
 * else `haproxy` from PATH.
 */
export function haproxyBinary(): string {
  const fromEnv = process.env.CERTD_HAPROXY_BIN;
  if (fromEnv) return fromEnv;
  return existsSync('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : 'haproxy';
}

function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** Waits until `pid` no longer runs; a zombie (reparented, never reaped) counts as gone. */
async function waitGone(pid: number, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    try {
      if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) return;
    } catch {
      return;
    }
    await sleep(20);
  }
}
