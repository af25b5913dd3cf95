import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import type { Config } from '../../config/schema.js';
import type { CertView, IssueResult, RemoveResult } from '../../service/cert-service.js';
import { certFilter, ORIGINS, type CertFilterOptions } from '../cert-filter.js';
import { CliContext, OFFLINE_NOTE, type GlobalOptions } from '../context.js';
import { certListForStdout } from '../format.js';
import { deployNote, emit, failIfPending } from '../output.js';

const JSON_HELP = 'print one JSON document on stdout (notes go to stderr)';

/** One line per result: what happened and where it is served. */
function report(r: IssueResult, done = r.issued ? 'issued' : 'up to date'): string {
  return `${r.cert.names.join(', ')}: ${done}, valid until ${r.cert.notAfter}${deployNote(r.deploy)}`;
}

/** Said on stderr with --json (stdout holds the document only), else after the text. */
function offlineNote(kind: 'daemon' | 'store', json: boolean | undefined): void {
  if (kind === 'store') (json ? process.stderr : process.stdout).write(`${OFFLINE_NOTE}\n`);
}

/** The config's certificates entry that lists any of these names: `run` issues it again at start. */
function configuredWith(config: Config, names: string[]): boolean {
  return config.certificates.some((c) => c.names.some((n) => names.includes(n)));
}

export function registerCerts(program: Command): void {
  const ctxOf = () => CliContext.load(program.opts<GlobalOptions>());

  program
    .command('issue <names...>')
    .description('issue a certificate for the names (the first is the primary) and deploy it')
    .option('--issuer <id>', 'issuer id from the config')
    .option('--json', JSON_HELP)
    .action(async (names: string[], o: { issuer?: string; json?: boolean }) => {
      const target = await (await ctxOf()).target();
      const result =
        target.kind === 'daemon'
          ? await target.client.call<IssueResult>('POST', '/certs', { names, issuer: o.issuer })
          : await target.service.ensure(names, { issuer: o.issuer, origin: 'api' });
      failIfPending(result.deploy);
      emit(o.json, { ...result, via: target.kind }, () => report(result));
      offlineNote(target.kind, o.json);
    });

  program
    .command('import')
    .description("store and deploy a certificate you bring: combined PEM, or cert + key (certbot's fullchain.pem + privkey.pem)")
    .requiredOption('--cert <file>', 'certificate chain PEM (may also hold the key)')
    .option('--key <file>', 'private key PEM')
    .option('--json', JSON_HELP)
    .action(async (o: { cert: string; key?: string; json?: boolean }) => {
      const [cert, key] = await Promise.all([readPemFile(o.cert, '--cert'), o.key ? readPemFile(o.key, '--key') : Promise.resolve('')]);
      const target = await (await ctxOf()).target();
      const result =
        target.kind === 'daemon'
          ? await target.client.call<IssueResult>('POST', '/import', { cert, key: key || undefined })
          : await target.service.importPem(cert, key);
      failIfPending(result.deploy);
      emit(o.json, { ...result, via: target.kind }, () => report(result, 'imported'));
      offlineNote(target.kind, o.json);
    });

  program
    .command('list [glob]')
    .description('certificates: names, issuer, expiry, days left, where deployed; GLOB (e.g. "*.example.com") matches any name')
    .option('--expiring <duration>', 'only those that expire within it (e.g. 14d), expired ones included')
    .option('--issuer <id>', 'only those from this issuer ("import" for imported ones)')
    .addOption(new Option('--origin <origin>', 'only those that came this way').choices(ORIGINS))
    .option('--json', 'print a JSON array of the certificates shown')
    .action(async (glob: string | undefined, o: Omit<CertFilterOptions, 'glob'> & { json?: boolean }) => {
      const keep = certFilter({ ...o, glob });
      const target = await (await ctxOf()).target();
      const all =
        target.kind === 'daemon' ? (await target.client.call<{ certs: CertView[] }>('GET', '/certs')).certs : await target.service.list();
      const certs = all.filter(keep);
      const filtered = glob !== undefined || o.expiring !== undefined || o.issuer !== undefined || o.origin !== undefined;
      emit(o.json, certs, () => {
        if (certs.length > 0) return certListForStdout(certs);
        return filtered ? `none of the ${all.length} certificate(s) match` : 'no certificates yet: `haproxy-certd issue NAME` adds one';
      });
    });

  program
    .command('remove <name>')
    .description('stop serving a certificate and delete it: give its id or any of its names')
    .option('--json', JSON_HELP)
    .action(async (name: string, o: { json?: boolean }) => {
      const ctx = await ctxOf();
      const target = await ctx.target();
      const result =
        target.kind === 'daemon'
          ? await target.client.call<RemoveResult>('DELETE', `/certs/${encodeURIComponent(name)}`)
          : await target.service.remove(name);
      failIfPending(result.deploy);
      const comesBack = configuredWith(ctx.config, result.names);
      emit(o.json, { ...result, comesBack, via: target.kind }, () => `${result.removed}: removed${deployNote(result.deploy)}`);
      if (comesBack) {
        process.stderr.write(
          `warning: ${ctx.configFile} lists ${result.removed} under certificates: it is issued again when the daemon next starts or reloads; remove it there too\n`,
        );
      }
      offlineNote(target.kind, o.json);
    });

  program
    .command('renew [names...]')
    .description('re-issue certificates now')
    .option('--all', 'every certificate that has an issuer')
    .option('--json', JSON_HELP)
    .action(async (names: string[], o: { all?: boolean; json?: boolean }) => {
      if (!o.all && names.length === 0) throw new UsageError('give names to renew, or --all');
      const target = await (await ctxOf()).target();
      const results =
        target.kind === 'daemon'
          ? (await target.client.call<{ results: IssueResult[] }>('POST', '/renew', o.all ? { all: true } : { names })).results
          : await target.service.renew(o.all ? 'all' : names);
      for (const r of results) failIfPending(r.deploy);
      const summary = renewSummary(results);
      emit(o.json, { results, summary, via: target.kind }, () =>
        [...results.map((r) => report(r)), `renewed ${summary.issued} of ${summary.total} certificate(s); ${summary.pending} not yet served by every instance`].join('\n'),
      );
      offlineNote(target.kind, o.json);
    });
}

/** The one line after `renew`'s results, so 900 lines end in a count a person or script can read. */
function renewSummary(results: IssueResult[]): { total: number; issued: number; pending: number } {
  return {
    total: results.length,
    issued: results.filter((r) => r.issued).length,
    pending: results.filter((r) => (r.deploy?.failed.length ?? 0) > 0).length,
  };
}

async function readPemFile(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw new UsageError(`${flag} ${path}: cannot read it (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, { cause });
  }
}
