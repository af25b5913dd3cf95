import type { Command } from 'commander';
import { CliContext, type GlobalOptions } from '../context.js';

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
      const [{ ReloadableDaemon }, { createLogger }] = await Promise.all([import('../../daemon/reload.js'), import('../../core/log.js')]);
      const log = createLogger();
      // The store claim lost (another process took it over): the daemon has stopped writing; exit.
      let fatal: (err: Error) => void = () => undefined;
      const lost = new Promise<Error>((resolve) => (fatal = resolve));
      const daemon = await ReloadableDaemon.start(ctx.configFile, ctx.config, { log, onFatal: (err) => fatal(err) });
      // SIGHUP (systemd's ExecReload) reads the config again; a new config that fails to start is fatal.
      const reloadFailed = new Promise<never>((_, reject) => process.on('SIGHUP', () => void daemon.reload().catch(reject)));
      const why = await Promise.race([untilSignal(), lost, reloadFailed]);
      if (why instanceof Error) throw why;
      log.info({ signal: why }, 'stopping');
      await daemon.stop();
    });
}
