import type { Command } from 'commander';
import { join } from 'node:path';
import { acmeHttpFrontend, configSnippets, onDemandFrontends } from '../../haproxy/assets/config.js';
import { onDemandSnippetOptions } from '../../daemon/haproxy-snippets.js';
import { readToken } from '../../daemon/token.js';
import { UsageError } from '../../core/errors.js';
import { CliContext, type GlobalOptions } from '../context.js';

export function registerHaproxyConfig(program: Command): void {
  program
    .command('haproxy-config')
    .description('print the haproxy.cfg lines haproxy-certd needs')
    .option('--bind <addr>', 'where HAProxy accepts TLS', ':443')
    .action(async (o: { bind: string }) => {
      const { config } = await CliContext.load(program.opts<GlobalOptions>());
      const unix = config.haproxy.instances.find((i) => i.runtime.startsWith('unix:'));
      const adminSocket = unix?.runtime.slice('unix:'.length);
      const usesHttp01 = Object.values(config.issuers).some((i) => i.type === 'acme' && i.challenge === 'http-01');
      const acmeMap = usesHttp01 ? join(config.haproxy.certDir, 'acme.map') : undefined;
      if (!config.onDemand) {
        process.stdout.write(configSnippets({ crtList: config.haproxy.crtList, adminSocket, acmeMap }));
        return;
      }
      const token = config.api.token ?? (await readToken(config.dataDir));
      if (!token) throw new UsageError('no API token yet: start the daemon once (`haproxy-certd run`) or set api.token');
      const od = onDemandSnippetOptions(config, token, o.bind)!;
      process.stdout.write(`# --- haproxy-certd with on-demand TLS: paste into haproxy.cfg ---
global
    stats socket ${adminSocket ?? '/run/haproxy/admin.sock'} mode 600 level admin
    lua-load ${od.luaFile}

${onDemandFrontends(od, '    default_backend app\n')}
${acmeMap ? acmeHttpFrontend({ bind: ':80', acmeMap }) : ''}`);
    });
}
