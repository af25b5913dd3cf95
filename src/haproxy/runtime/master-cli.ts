import { connect } from 'node:net';
import { HaproxyTimeoutError, HaproxyUnreachableError, InvalidNameError } from '../../core/errors.js';

/**
 * Runs one command on HAProxy's master CLI (`-S <socket>`) and resolves with its output. The
 * master answers only after the client half-closes, then closes; `@1 <cmd>` routes the command to
 * the current worker. One connection per call, so calls are safe concurrently.
 */
export function masterCommand(socketPath: string, command: string, timeoutMs = 2_000): Promise<string> {
  if (/[\r\n]/.test(command)) return Promise.reject(new InvalidNameError('master CLI command must be one line'));
  return new Promise((resolve, reject) => {
    const socket = connect({ path: socketPath });
    const chunks: string[] = [];
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(chunks.join(''));
    };
    const timer = setTimeout(
      () => finish(new HaproxyTimeoutError(`haproxy master CLI ${socketPath}: no answer to \`${command}\` within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => chunks.push(c));
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    socket.on('error', (err) =>
      finish(new HaproxyUnreachableError(`haproxy master CLI ${socketPath}: ${err.message} — is the master running?`, { cause: err })),
    );
    socket.end(`${command}\n`);
  });
}

/** What the master CLI's `reload` answered: 3.x says whether the new configuration loaded. */
export interface ReloadAnswer {
  success: boolean;
  /** The ALERT lines of the startup log that follows the verdict (why a reload failed). */
  alerts: string[];
}

/**
 * Reads the answer to `reload` on the master CLI. 3.0+ answers `Success=1` or `Success=0`, `--`,
 * then the startup log (measured on 3.0.11 and 3.2.26); 2.6 answers nothing, so undefined: the
 * caller falls back to what `show proc` shows.
 */
export function parseReloadAnswer(text: string): ReloadAnswer | undefined {
  const m = /^Success=([01])\n/.exec(text);
  if (!m) return undefined;
  const alerts = text
    .split('\n')
    .filter((l) => l.startsWith('[ALERT]'))
    .map((l) => l.replace(/^\[ALERT\]\s+\(\d+\)\s+:\s+/, ''));
  return { success: m[1] === '1', alerts };
}
