import type { Command } from 'commander';
import type { StatusView } from '../../api/server.js';
import { CliContext, type GlobalOptions } from '../context.js';
import { formatCertList, table } from '../format.js';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('daemon, HAProxy instances (up/down, in sync) and certificates expiring soon')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const ctx = await CliContext.load(program.opts<GlobalOptions>());
      const client = await ctx.daemon();
      if (!client) {
        console.log(`daemon: not running (no answer on ${ctx.config.api.listen})`);
        process.exitCode = 1;
        return;
      }
      const view = await client.call<StatusView>('GET', '/status');
      if (o.json) return console.log(JSON.stringify(view, null, 2));
      console.log(`daemon: running on ${client.baseUrl}\n`);
      console.log(
        table(
          ['INSTANCE', 'RUNTIME', 'STATE', 'PID', 'IN SYNC', 'MISSING', 'STALE', 'LAST ERROR'],
          view.instances.map((i) => [
            i.name,
            i.runtime ?? '-',
            i.state,
            String(i.pid ?? '-'),
            String(i.inSync),
            String(i.missing),
            String(i.stale),
            i.lastError ? `${i.lastError} (${i.lastErrorAt})` : '',
          ]),
        ),
      );
      const soon = view.certs.filter((c) => Date.parse(c.notAfter) - Date.now() < 14 * 86_400_000);
      console.log(`\n${view.certs.length} certificate(s); ${soon.length} expire within 14 days`);
      if (soon.length > 0) console.log(formatCertList(soon));
    });
}
