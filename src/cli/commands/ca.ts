import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { openStore } from '../../daemon/daemon.js';
import { EMBEDDED_ISSUER } from '../../daemon/issuers.js';
import { initLocalCa } from '../../issuers/local-ca/index.js';
import { CliContext, type GlobalOptions } from '../context.js';

export function registerCa(program: Command): void {
  const ca = program.command('ca').description('local CA');
  ca.command('init')
    .description('create the local CA root (or store a supplied one)')
    .option('--issuer <id>', 'local-ca issuer id', EMBEDDED_ISSUER)
    .option('--cert <file>', 'an existing CA certificate (PEM) to use')
    .option('--key <file>', 'its private key (PEM)')
    .option('--force', 'replace a stored root (certificates it signed stop validating)')
    .action(async (o: { issuer: string; cert?: string; key?: string; force?: boolean }) => {
      const ctx = await CliContext.load(program.opts<GlobalOptions>());
      const spec = ctx.config.issuers[o.issuer];
      if (spec ? spec.type !== 'local-ca' : Object.keys(ctx.config.issuers).length > 0) {
        throw new UsageError(`issuer "${o.issuer}" is not a local-ca issuer in ${ctx.configFile}`);
      }
      if (Boolean(o.cert) !== Boolean(o.key)) throw new UsageError('give --cert and --key together');
      const store = await openStore(ctx.config, ctx.log);
      const [certPem, keyPem] = o.cert && o.key ? await Promise.all([readFile(o.cert, 'utf8'), readFile(o.key, 'utf8')]) : [];
      const created = await initLocalCa(store, o.issuer, { certPem, keyPem, force: o.force });
      process.stdout.write(created.rootPem);
      process.stderr.write(`local CA "${o.issuer}" ready; its root certificate is printed above (trust it in clients)\n`);
      await store.close();
    });
}
