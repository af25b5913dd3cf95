import type { Logger } from 'pino';
import { sleep } from '../../core/async.js';
import { CertdError } from '../../core/errors.js';
import { masterCommand, parseReloadAnswer } from '../runtime/master-cli.js';

/** At most one reload per instance this often: a reload with 10k certs costs seconds of CPU. */
const MIN_INTERVAL_MS = 30_000;
const CONFIRM_TIMEOUT_MS = 30_000;
/** A reload in progress never keeps a stopping daemon's process alive. */
const UNREF = { unref: true };

interface ProcState {
  workers: number[];
  failedReloads: number;
}

/** Reads `show proc`: the current workers (before "# old workers") and the master's failed-reload count. */
export function parseShowProc(text: string): ProcState {
  const workers: number[] = [];
  let failedReloads = 0;
  let section = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) {
      section = line.trim();
      continue;
    }
    const cols = line.trim().split(/\s+/);
    if (cols[1] === 'master') failedReloads = Number(/\[failed: (\d+)\]/.exec(line)?.[1] ?? 0);
    if (cols[1] === 'worker' && section === '# workers') workers.push(Number(cols[0]));
  }
  return { workers, failedReloads };
}

/**
 * The fallback for what HAProxy 2.6's runtime API cannot express (e.g. a certificate larger than
 * one CLI buffer): the files are already written, so a hitless reload through the master CLI
 * loads them. Coalesced (callers during a reload share it) and rate limited; confirmed with
 * `show proc` (a new worker, no new failed reload). Never used for ordinary add/update/remove.
 * Safe to call concurrently.
 */
export class ReloadFallback {
  private last = 0;
  private running?: Promise<void>;

  constructor(
    private readonly masterSocket: string,
    private readonly instance: string,
    private readonly log: Logger,
    private readonly minIntervalMs = MIN_INTERVAL_MS,
  ) {}

  request(reason: string): Promise<void> {
    this.running ??= this.reload(reason).finally(() => (this.running = undefined));
    return this.running;
  }

  private async reload(reason: string): Promise<void> {
    const wait = this.last + this.minIntervalMs - Date.now();
    if (wait > 0) await sleep(wait, undefined, UNREF);
    this.last = Date.now();
    const before = parseShowProc(await masterCommand(this.masterSocket, 'show proc'));
    this.log.warn({ instance: this.instance, reason }, 'runtime API cannot express this change: hitless reload through the master CLI');
    // 3.x answers with its verdict and the startup log's alerts: a failure can say why at once.
    const answer = parseReloadAnswer(await masterCommand(this.masterSocket, 'reload', CONFIRM_TIMEOUT_MS));
    if (answer?.success === false) {
      throw new CertdError('CERTD_E_HAPROXY_RELOAD_FAILED', `instance ${this.instance}: the reload failed: ${answer.alerts.join(' | ') || "see HAProxy's log"}; the old worker keeps serving`);
    }
    const deadline = Date.now() + CONFIRM_TIMEOUT_MS;
    while (Date.now() < deadline) {
      // The master re-executes itself on reload: its socket refuses connections for a moment.
      const text = await masterCommand(this.masterSocket, 'show proc').catch(() => undefined);
      if (text === undefined) {
        await sleep(100, undefined, UNREF);
        continue;
      }
      const now = parseShowProc(text);
      if (now.failedReloads > before.failedReloads) {
        throw new CertdError('CERTD_E_HAPROXY_RELOAD_FAILED', `instance ${this.instance}: the reload failed (see HAProxy's log); the old worker keeps serving`, { category: 'upstream' });
      }
      if (now.workers.length > 0 && !now.workers.some((p) => before.workers.includes(p))) {
        this.log.info({ instance: this.instance, workers: now.workers }, 'reload confirmed');
        return;
      }
      await sleep(100, undefined, UNREF);
    }
    throw new CertdError('CERTD_E_HAPROXY_RELOAD_TIMEOUT', `instance ${this.instance}: no new worker within ${CONFIRM_TIMEOUT_MS} ms after reload`, { category: 'upstream' });
  }
}
