import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { ApiError, UsageError } from '../../core/errors.js';
import type { Config } from '../../config/schema.js';
import type { CertView, IssueResult, RemoveResult } from '../../service/cert-service.js';
import type { RenewFailure, RenewLine, RenewSummary } from '../../api/renewals.js';
import { certFilter, ORIGINS, serverFilter, type CertFilterOptions } from '../cert-filter.js';
import { daemonPages, JsonArrayWriter, listQuery, positiveInt, storePages, streamQuery } from '../cert-pages.js';
import { CliContext, OFFLINE_NOTE, type GlobalOptions } from '../context.js';
import { certListForStdout } from '../format.js';
import { deployNote, emit, failIfPending } from '../output.js';
import { Progress } from '../progress.js';

const JSON_HELP = 'print one JSON document on stdout (notes go to stderr)';

/** One line per result: what happened and where it is served. */
function report(r: IssueResult, done = r.issued ? 'issued' : 'up to date'): string {
  return `${r.cert.names.join(', ')}: ${done}, valid until ${r.cert.notAfter}${deployNote(r.deploy)}`;
}

/** Said after `remove` on the store alone: nothing was saved, and HAProxy may still serve it. */
const OFFLINE_REMOVE_NOTE =
  'daemon not running: deleted from the store only; an HAProxy that loaded it goes on serving it until `haproxy-certd run` starts and takes it out';

/** Said on stderr with --json (stdout holds the document only), else after the text. */
function offlineNote(kind: 'daemon' | 'store', json: boolean | undefined, note = OFFLINE_NOTE): void {
  if (kind === 'store') (json ? process.stderr : process.stdout).write(`${note}\n`);
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
    .description('certificates: names, issuer, origin, expiry, days left, where deployed; GLOB (e.g. "*.example.com") matches any name')
    .option('--expiring <duration>', 'only those that expire within it (e.g. 14d), expired ones included')
    .option('--issuer <id>', 'only those from this issuer ("import" for imported ones)')
    .addOption(new Option('--origin <origin>', 'only those that came this way').choices(ORIGINS))
    .option('--limit <n>', 'show at most this many (default: all, read page by page)', positiveInt)
    .option('--json', 'print a JSON array of the certificates shown (written page by page as they arrive)')
    .action(async (glob: string | undefined, o: Omit<CertFilterOptions, 'glob'> & { json?: boolean; limit?: number }) => {
      const keep = certFilter({ ...o, glob });
      const target = await (await ctxOf()).target();
      // Every match as JSON, filtered exactly by the daemon (no glob: its name filter is a
      // superset): its array is passed to stdout as it arrives, never parsed here.
      if (target.kind === 'daemon' && o.json && glob === undefined && o.limit === undefined) {
        if (await target.client.pipeArray(`/certs?${streamQuery(o)}`, process.stdout)) return;
      }
      const pages =
        target.kind === 'daemon'
          ? daemonPages(target.client, listQuery({ ...o, glob }))
          : storePages(target.service, { filter: serverFilter({ ...o, glob }) });
      const json = o.json ? new JsonArrayWriter(process.stdout) : undefined;
      const shown: CertView[] = [];
      let stored = 0;
      let count = 0;
      outer: for await (const page of pages) {
        stored = page.stored;
        // The daemon's name filter is a superset (a substring when the glob has no wildcard): the
        // command keeps its own exact meaning.
        for (const cert of page.certs) {
          if (!keep(cert)) continue;
          if (o.limit !== undefined && count >= o.limit) break outer;
          count++;
          if (json) json.push(cert);
          else shown.push(cert);
        }
      }
      if (json) return json.end();
      const filtered = glob !== undefined || o.expiring !== undefined || o.issuer !== undefined || o.origin !== undefined;
      emit(false, shown, () => {
        if (shown.length > 0) return certListForStdout(shown);
        return filtered ? `none of the ${stored} certificate(s) match` : 'no certificates yet: `haproxy-certd issue NAME` adds one';
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
      offlineNote(target.kind, o.json, OFFLINE_REMOVE_NOTE);
    });

  program
    .command('renew [names...]')
    .description('re-issue certificates now; goes on past a failure, shows progress, ends with a summary; exits 1 if any failed')
    .option('--all', 'every certificate that has an issuer')
    .option('--json', `${JSON_HELP}; progress goes to stderr`)
    .action(async (names: string[], o: { all?: boolean; json?: boolean }) => {
      if (!o.all && names.length === 0) throw new UsageError('give names to renew, or --all');
      const target = await (await ctxOf()).target();
      const body = o.all ? { all: true } : { names };
      const lines =
        target.kind === 'daemon'
          ? target.client.lines<RenewLine>('POST', '/renew', body)
          : (await import('../../api/renewals.js')).renewEach(target.service, await target.service.renewalTargets(o.all ? 'all' : names));
      const { results, failed, summary } = await showRenewals(lines, new Progress(o.json ? process.stderr : process.stdout));
      for (const r of results) failIfPending(r.deploy);
      emit(o.json, { results, failed, summary, via: target.kind }, () => summaryLine(summary));
      offlineNote(target.kind, o.json);
      if (failed.length > 0) {
        process.exitCode = 1;
        process.stderr.write(`error: ${failed.length} of ${summary.total} certificate(s) failed to renew: ${failed.map((f) => `${f.id} [${f.error.code}]`).join(', ')}\n`);
      }
    });
}

/** Prints each renewal as it finishes (see Progress) and collects what --json and the summary need. */
async function showRenewals(lines: AsyncIterable<RenewLine>, progress: Progress): Promise<{ results: IssueResult[]; failed: RenewFailure[]; summary: RenewSummary }> {
  const results: IssueResult[] = [];
  const failed: RenewFailure[] = [];
  for await (const line of lines) {
    if (line.type === 'result') {
      results.push(line.result);
      progress.step(line.done, line.total, progress.inPlace ? `${line.id}: ${line.result.issued ? 'renewed' : 'up to date'}` : report(line.result));
    } else if (line.type === 'failure') {
      const { type: _, done, total, ...failure } = line;
      failed.push(failure);
      const text = `${line.id}: FAILED: ${line.error.message} [${line.error.code}]`;
      if (progress.inPlace) progress.keep(text);
      progress.step(done, total, progress.inPlace ? `${line.id}: failed` : text);
    } else if (line.type === 'summary') {
      progress.clear();
      const { type: _, ...summary } = line;
      return { results, failed, summary };
    }
  }
  throw new ApiError('the renewal stream ended before its summary: the daemon stopped or the connection broke; `haproxy-certd list` shows what was renewed');
}

/** `renew`'s last line, so 900 results end in counts a person or script can read. */
function summaryLine(s: RenewSummary): string {
  const failed = s.failed.length > 0 ? ` (${s.failed.join(', ')})` : '';
  return `renewed ${s.issued} of ${s.total} certificate(s), ${s.unchanged} unchanged, ${s.failed.length} failed${failed}, in ${(s.ms / 1000).toFixed(1)}s; ${s.pending} not yet served by every instance`;
}

async function readPemFile(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw new UsageError(`${flag} ${path}: cannot read it (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, { cause });
  }
}
