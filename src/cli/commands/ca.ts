import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { NotFoundError, UsageError } from '../../core/errors.js';
import { EMBEDDED_ISSUER } from '../../daemon/issuer-ids.js';
import { CliContext, type GlobalOptions } from '../context.js';
import { emit } from '../output.js';

export function registerCa(program: Command): void {
  const ca = program.command('ca').description('local CA');
  ca.command('init')
    .description('create the local CA root (or store a supplied one)')
    .option('--issuer <id>', 'local-ca issuer id', EMBEDDED_ISSUER)
    .option('--cert <file>', 'an existing CA certificate (PEM) to use')
    .option('--key <file>', 'its private key (PEM)')
    .option('--force', 'replace a stored root (certificates it signed stop validating)')
    .option('--json', 'print {"issuer", "rootPem"} as one JSON document')
    .action(async (o: { issuer: string; cert?: string; key?: string; force?: boolean; json?: boolean }) => {
      const ctx = await localCaContext(program, o.issuer);
      if (Boolean(o.cert) !== Boolean(o.key)) throw new UsageError('give --cert and --key together');
      const store = await ctx.openStore();
      const { initLocalCa } = await import('../../issuers/local-ca/index.js');
      const [certPem, keyPem] = o.cert && o.key ? await Promise.all([readFile(o.cert, 'utf8'), readFile(o.key, 'utf8')]) : [];
      const created = await initLocalCa(store, o.issuer, { certPem, keyPem, force: o.force });
      emit(o.json, { issuer: o.issuer, rootPem: created.rootPem }, () => created.rootPem.trimEnd());
      process.stderr.write(`local CA "${o.issuer}" ready; its root certificate is printed above (trust it in clients)\n`);
      await store.close();
    });
  ca.command('export')
    .description('print the local CA root certificate (PEM) to install in clients; never its key')
    .option('--issuer <id>', 'local-ca issuer id', EMBEDDED_ISSUER)
    .option('--json', 'print {"issuer", "rootPem"} as one JSON document')
    .action(async (o: { issuer: string; json?: boolean }) => {
      const ctx = await localCaContext(program, o.issuer);
      // Read-only: a root is never created here, so exporting cannot change what clients must trust.
      const store = await ctx.openStore();
      try {
        const { readStoredRoot } = await import('../../issuers/local-ca/storage.js');
        const root = await readStoredRoot(store, o.issuer);
        if (!root) {
          throw new NotFoundError(`no local CA root stored for issuer "${o.issuer}" yet: \`haproxy-certd ca init\` creates one (the daemon does at its first certificate)`);
        }
        emit(o.json, { issuer: o.issuer, rootPem: root.certPem }, () => root.certPem.trimEnd());
      } finally {
        await store.close();
      }
    });
}

/** The config, once it is known that ISSUER is one of its local CAs (or the embedded one). */
async function localCaContext(program: Command, issuer: string): Promise<CliContext> {
  const ctx = await CliContext.load(program.opts<GlobalOptions>());
  const spec = ctx.config.issuers[issuer];
  if (spec ? spec.type !== 'local-ca' : Object.keys(ctx.config.issuers).length > 0 || issuer !== EMBEDDED_ISSUER) {
    throw new UsageError(`issuer "${issuer}" is not a local-ca issuer in ${ctx.configFile}`);
  }
  return ctx;
}
