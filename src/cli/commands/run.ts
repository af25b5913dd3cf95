import type { Command } from 'commander';
import { Daemon } from '../../daemon/daemon.js';
import { CliContext, type GlobalOptions } from '../context.js';
import { createLogger } from '../../core/log.js';

/** Resolves on the first SIGINT or SIGTERM. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const done = (sig: NodeJS.Signals) => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve(sig);
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run the daemon: issue, renew and hot-load certificates into every HAProxy instance')
    .action(async () => {
      const ctx = await CliContext.load(program.opts<GlobalOptions>());
      const log = createLogger();
      let fatal: (err: Error) => void = () => undefined;
      const lost = new Promise<Error>((resolve) => (fatal = resolve));
      const daemon = await Daemon.start(ctx.config, { log, onFatal: (err) => fatal(err) });
      const why = await Promise.race([untilSignal(), lost]);
      if (why instanceof Error) throw why;
      log.info({ signal: why }, 'stopping');
      await daemon.stop();
    });
}
