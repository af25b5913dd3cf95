import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import type { CertView, IssueResult } from '../../service/cert-service.js';
import type { DeployOutcome } from '../../haproxy/deploy/deployer.js';
import { CliContext, OFFLINE_NOTE, type GlobalOptions } from '../context.js';
import { formatCertList } from '../format.js';

/** One line per result: what happened and where it is served. */
function report(r: IssueResult): string {
  const what = r.issued ? 'issued' : 'up to date';
  return `${r.cert.names.join(', ')}: ${what}, valid until ${r.cert.notAfter}${deployNote(r.deploy)}`;
}

function deployNote(d: DeployOutcome | undefined): string {
  if (!d) return '';
  // Not served everywhere: the command fails (exit 1), so a script notices; the daemon goes on retrying.
  if (d.failed.length > 0) process.exitCode = 1;
  const failed = d.failed.map((f) => `\n  not yet on ${f.instance}: ${f.error} (retrying)`).join('');
  return `; served by ${d.ok.length}/${d.ok.length + d.failed.length} instance(s)${failed}`;
}

export function registerCerts(program: Command): void {
  const ctxOf = () => CliContext.load(program.opts<GlobalOptions>());

  program
    .command('issue <names...>')
    .description('issue a certificate for the names (the first is the primary) and deploy it')
    .option('--issuer <id>', 'issuer id from the config')
    .action(async (names: string[], o: { issuer?: string }) => {
      const target = await (await ctxOf()).target();
      const result =
        target.kind === 'daemon'
          ? await target.client.call<IssueResult>('POST', '/certs', { names, issuer: o.issuer })
          : await target.service.ensure(names, { issuer: o.issuer, origin: 'api' });
      console.log(report(result));
      if (target.kind === 'store') console.log(OFFLINE_NOTE);
    });

  program
    .command('import')
    .description("store and deploy a certificate you bring: combined PEM, or cert + key (certbot's fullchain.pem + privkey.pem)")
    .requiredOption('--cert <file>', 'certificate chain PEM (may also hold the key)')
    .option('--key <file>', 'private key PEM')
    .action(async (o: { cert: string; key?: string }) => {
      const [cert, key] = await Promise.all([readPemFile(o.cert, '--cert'), o.key ? readPemFile(o.key, '--key') : Promise.resolve('')]);
      const target = await (await ctxOf()).target();
      const result =
        target.kind === 'daemon'
          ? await target.client.call<IssueResult>('POST', '/import', { cert, key: key || undefined })
          : await target.service.importPem(cert, key);
      console.log(report(result).replace('up to date', 'imported'));
      if (target.kind === 'store') console.log(OFFLINE_NOTE);
    });

  program
    .command('list')
    .description('certificates: names, issuer, expiry, days left, where deployed')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const target = await (await ctxOf()).target();
      const certs =
        target.kind === 'daemon' ? (await target.client.call<{ certs: CertView[] }>('GET', '/certs')).certs : await target.service.list();
      console.log(o.json ? JSON.stringify(certs, null, 2) : formatCertList(certs));
    });

  program
    .command('remove <name>')
    .description('stop serving a certificate and delete it')
    .action(async (name: string) => {
      const target = await (await ctxOf()).target();
      const result =
        target.kind === 'daemon'
          ? await target.client.call<{ removed: string; deploy?: DeployOutcome }>('DELETE', `/certs/${encodeURIComponent(name)}`)
          : await target.service.remove(name);
      console.log(`${result.removed}: removed${deployNote(result.deploy)}`);
      if (target.kind === 'store') console.log(OFFLINE_NOTE);
    });

  program
    .command('renew [names...]')
    .description('re-issue certificates now')
    .option('--all', 'every certificate that has an issuer')
    .action(async (names: string[], o: { all?: boolean }) => {
      if (!o.all && names.length === 0) throw new UsageError('give names to renew, or --all');
      const target = await (await ctxOf()).target();
      const results =
        target.kind === 'daemon'
          ? (await target.client.call<{ results: IssueResult[] }>('POST', '/renew', o.all ? { all: true } : { names })).results
          : await target.service.renew(o.all ? 'all' : names);
      for (const r of results) console.log(report(r));
      if (target.kind === 'store') console.log(OFFLINE_NOTE);
    });
}

async function readPemFile(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw new UsageError(`${flag} ${path}: cannot read it (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, { cause });
  }
}
