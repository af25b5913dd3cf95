import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { DURATION_HINT, tryParseDuration } from '../../config/duration.js';
import { UsageError } from '../../core/errors.js';

interface WaitCliOptions {
  crtList: string;
  timeout: string;
  policy: 'fail' | 'continue';
  interval: string;
  crtBase?: string;
}

/**
 * `wait --crt-list F --timeout 60s --policy fail|continue`: blocks until F and every file it
 * names are ready, for systemd's ExecStartPre before HAProxy. Reads files only — no config file,
 * no daemon — so it works on a fresh machine and while the daemon is down.
 */
export function registerWait(program: Command): void {
  program
    .command('wait')
    .description('wait until a crt-list and every certificate and CA file it names are ready (before HAProxy starts)')
    .requiredOption('--crt-list <file>', 'the crt-list HAProxy loads')
    .option('--timeout <duration>', 'how long to wait, e.g. 60s, 2m', '60s')
    .addOption(
      new Option('--policy <policy>', 'when the time is up: fail (exit 1) or continue (warn, exit 0)').choices(['fail', 'continue']).default('fail'),
    )
    .option('--interval <duration>', 'pause between checks', '250ms')
    .option('--crt-base <dir>', "where relative paths in the list resolve, like HAProxy's crt-base (default: the list's folder)")
    .action(async (o: WaitCliOptions) => {
      const timeoutMs = durationOption('--timeout', o.timeout, 0);
      const intervalMs = durationOption('--interval', o.interval, 1);
      const crtList = resolve(o.crtList);
      const { CrtListIncompleteError, describeProblems, waitForCrtList } = await import('../../haproxy/crtlist/check.js');
      const report = await waitForCrtList(crtList, { timeoutMs, intervalMs, base: o.crtBase && resolve(o.crtBase) });
      if (report.complete) {
        process.stdout.write(`crt-list ${crtList} is complete: ${report.certificates} certificate(s)\n`);
        return;
      }
      const summary = `crt-list ${crtList} is not complete after ${o.timeout}: ${describeProblems(report)}`;
      if (o.policy === 'fail') throw new CrtListIncompleteError(summary);
      process.stderr.write(`warning: ${summary}; continuing (--policy continue): HAProxy may fail to start or serve an older certificate\n`);
    });
}

function durationOption(flag: string, text: string, minMs: number): number {
  const ms = tryParseDuration(text);
  if (ms === undefined || ms < minMs) {
    throw new UsageError(`${flag} ${JSON.stringify(text)}: expected ${minMs > 0 ? 'a positive duration: ' : ''}${DURATION_HINT}`);
  }
  return ms;
}
