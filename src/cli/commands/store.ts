import { Option, type Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import type { PgStore } from '../../store/postgres/pg-store.js';
import { CliContext, type GlobalOptions } from '../context.js';
import { emit } from '../output.js';

const JSON_HELP = 'print one JSON document on stdout';

/** The configured store, which these commands need to be a postgres one. */
async function postgresStore(ctx: CliContext, what: string): Promise<PgStore> {
  if (ctx.config.store.type !== 'postgres') throw new UsageError(`${what} needs store: { type: postgres, … } in ${ctx.configFile} (it has type ${ctx.config.store.type})`);
  return (await ctx.openStore()) as PgStore;
}

export function registerStore(program: Command): void {
  const store = program.command('store').description('the shared store: key rotation, moving from the fs store');
  store
    .command('rotate-key')
    .description("re-seal every private key and secret in the postgres store with the key file's first key (older keys stay able to open until removed)")
    .option('--json', JSON_HELP)
    .action(async (o: { json?: boolean }) => {
      const ctx = await CliContext.load(program.opts<GlobalOptions>());
      const pg = await postgresStore(ctx, 'store rotate-key');
      try {
        const r = await pg.rotateKey();
        emit(o.json, r, () =>
          r.left === 0
            ? `re-sealed ${r.resealed} secret(s); every secret is now sealed with the key file's first key: older keys may be removed from every replica's key file`
            : `re-sealed ${r.resealed} secret(s); ${r.left} are still sealed with older keys (written meanwhile by a replica whose key file has another first key): run again once every replica has the new key first`,
        );
        if (r.left > 0) process.exitCode = 1;
      } finally {
        await pg.close();
      }
    });
  store
    .command('migrate')
    .description('copy an fs store (dataDir) into the configured postgres store without issuing anything; safe to run again')
    .addOption(new Option('--from <type>', 'the store to copy from').choices(['fs']).makeOptionMandatory())
    .addOption(new Option('--to <type>', 'the store to copy to (the one in the config)').choices(['postgres']).makeOptionMandatory())
    .option('--data-dir <dir>', "the fs store's directory (default: dataDir from the config)")
    .option('--json', JSON_HELP)
    .action(async (o: { dataDir?: string; json?: boolean }) => {
      const ctx = await CliContext.load(program.opts<GlobalOptions>());
      const dataDir = o.dataDir ?? ctx.config.dataDir;
      const [{ FsStore }, { copyStore, fsBlobKeys }, log] = await Promise.all([import('../../store/fs/fs-store.js'), import('../../store/copy.js'), ctx.logger()]);
      const from = await FsStore.open(dataDir, { onWarning: (err) => log.warn({ err: err.message }, 'store warning') });
      try {
        // The claim refuses while a daemon still runs on the fs store: it would go on changing it.
        await from.claimForDaemon(() => undefined);
        const to = await postgresStore(ctx, 'store migrate');
        try {
          const r = await copyStore(from, to, await fsBlobKeys(dataDir));
          emit(o.json, { from: dataDir, ...r }, () =>
            [
              `certificates: ${r.certs.copied} copied, ${r.certs.same} already there` +
                (r.certs.keptNewer.length > 0 ? `, ${r.certs.keptNewer.length} kept (renewed in the database since): ${r.certs.keptNewer.join(', ')}` : ''),
              `pending requests: ${r.pending}; DNS-01 records: ${r.dnsRecords}`,
              `blobs (local CA, ACME accounts, default certificate): ${r.blobs.copied} copied, ${r.blobs.same} already there` +
                (r.blobs.keptTarget.length > 0 ? `, ${r.blobs.keptTarget.length} differ in the database and were kept as they are there: ${r.blobs.keptTarget.join(', ')}` : ''),
              'nothing was issued; start the daemons on the postgres config now',
            ].join('\n'),
          );
        } finally {
          await to.close();
        }
      } finally {
        await from.close();
      }
    });
}
