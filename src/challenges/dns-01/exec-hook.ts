import { spawn } from 'node:child_process';
import { DnsHookError } from './errors.js';
import type { TxtPublisher, TxtRecord } from './publisher.js';

export interface ExecHookOptions {
  /** The program and its first arguments; the action, FQDN and value are appended. */
  command: readonly string[];
  /** One call's bound; then the hook's process group gets SIGTERM, and SIGKILL 2 s later. */
  timeoutMs: number;
  /** The environment the hook inherits (default: this process's). */
  env?: NodeJS.ProcessEnv;
}

/** How much of the hook's stderr goes into the error: its end, where the reason usually is. */
const STDERR_SHOWN = 1_000;
/** Grace between SIGTERM and SIGKILL of a hook past its timeout. */
const KILL_GRACE_MS = 2_000;
/** Environment variables whose values are never shown, even when a hook prints them. */
const SECRET_NAME = /TOKEN|SECRET|PASS|KEY|AUTH|CRED|PRIVATE/i;

/**
 * DNS-01 through a hook program, with lego's `exec` protocol: `<command> present <fqdn.> <value>`
 * to add, `cleanup` to remove (the FQDN with its trailing dot, as lego passes it). The same
 * values are in CERTD_DNS_ACTION, CERTD_DNS_FQDN, CERTD_DNS_VALUE and CERTD_DNS_ZONE. The hook
 * runs without a shell in a process group of its own, which is killed when the hook ends or at its
 * timeout, so nothing it started keeps running. A non-zero exit, a signal or the timeout throws
 * DnsHookError with the end of its stderr (values of secret-looking variables masked). Safe to
 * call concurrently.
 */
export class ExecHookPublisher implements TxtPublisher {
  readonly #opts: ExecHookOptions;

  constructor(opts: ExecHookOptions) {
    this.#opts = opts;
  }

  add(record: TxtRecord, signal?: AbortSignal): Promise<void> {
    return this.#run('present', record, signal);
  }

  remove(record: TxtRecord): Promise<void> {
    return this.#run('cleanup', record, undefined);
  }

  #run(action: 'present' | 'cleanup', { fqdn, value, zone }: TxtRecord, signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    const [program, ...args] = this.#opts.command;
    const env = this.#opts.env ?? process.env;
    const what = `DNS hook ${program} ${action} ${fqdn}`;
    return new Promise<void>((resolve, reject) => {
      const child = spawn(program!, [...args, action, `${fqdn}.`, value], {
        detached: true,
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...env, CERTD_DNS_ACTION: action, CERTD_DNS_FQDN: `${fqdn}.`, CERTD_DNS_VALUE: value, CERTD_DNS_ZONE: zone },
      });
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
        stderr = (stderr + chunk).slice(-4 * STDERR_SHOWN);
      });
      let failure: Error | undefined;
      let killTimer: NodeJS.Timeout | undefined;
      const killGroup = (sig: NodeJS.Signals) => {
        if (child.pid === undefined) return;
        try {
          process.kill(-child.pid, sig);
        } catch {
          // The group is gone already.
        }
      };
      const stop = (err: Error) => {
        failure ??= err;
        killGroup('SIGTERM');
        killTimer ??= setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
      };
      const timer = setTimeout(
        () => stop(new DnsHookError(`${what} did not finish within ${this.#opts.timeoutMs} ms and was killed${shown(stderr, env)}`)),
        this.#opts.timeoutMs,
      );
      const onAbort = () => stop(signal!.reason as Error);
      signal?.addEventListener('abort', onAbort, { once: true });
      const settle = (err: Error | undefined) => {
        clearTimeout(timer);
        clearTimeout(killTimer);
        signal?.removeEventListener('abort', onAbort);
        // Whatever the hook left behind in its group (a backgrounded child) goes with it.
        killGroup('SIGKILL');
        child.stderr!.destroy();
        if (err) reject(err);
        else resolve();
      };
      child.once('error', (err) => settle(new DnsHookError(`cannot run ${what}: ${err.message}; check dns exec.command`, { cause: err })));
      // 'exit', not 'close': a grandchild holding stderr open must not keep us waiting.
      child.once('exit', (code, sig) => {
        if (failure) return settle(failure);
        if (code === 0) return settle(undefined);
        const how = code !== null ? `exited with ${code}` : `was killed by ${sig}`;
        settle(new DnsHookError(`${what} ${how}${shown(stderr, env)}`));
      });
    });
  }
}

/** The end of a hook's stderr for an error message, secret-looking variables' values masked. */
function shown(stderr: string, env: NodeJS.ProcessEnv): string {
  let text = stderr;
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && value.length >= 4 && SECRET_NAME.test(name)) text = text.replaceAll(value, `[${name}]`);
  }
  text = text.replace(/\s+/g, ' ').trim();
  if (text === '') return ' (no stderr)';
  return `: ${text.length > STDERR_SHOWN ? `…${text.slice(-STDERR_SHOWN)}` : text}`;
}
