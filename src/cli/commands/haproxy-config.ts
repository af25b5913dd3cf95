import type { Command } from 'commander';
import { configSnippets } from '../../haproxy/assets/config.js';
import { CliContext, type GlobalOptions } from '../context.js';

export function registerHaproxyConfig(program: Command): void {
  program
    .command('haproxy-config')
    .description('print the haproxy.cfg lines haproxy-certd needs')
    .action(async () => {
      const { config } = await CliContext.load(program.opts<GlobalOptions>());
      const unix = config.haproxy.instances.find((i) => i.runtime.startsWith('unix:'));
      process.stdout.write(configSnippets({ crtList: config.haproxy.crtList, adminSocket: unix?.runtime.slice('unix:'.length) }));
    });
}
