import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import type { Config } from '../../config/schema.js';
import { UsageError } from '../../core/errors.js';
import { onDemandSnippetOptions } from '../../daemon/haproxy-snippets.js';
import { loadOrCreateToken } from '../../daemon/token.js';
import { pasteConfig } from '../../haproxy/assets/config.js';
import { readExistingConfig, socketServes, type ExistingConfig } from '../../haproxy/assets/existing-config.js';
import { certDirLayout } from '../../haproxy/cert-dir.js';
import { CliContext, type GlobalOptions } from '../context.js';

interface HaproxyConfigOptions {
  bind: string;
  httpBind: string;
  backend?: string;
  merge?: string;
}

/** Bind addresses go into haproxy.cfg verbatim: one word, HAProxy's address characters only. */
const BIND = /^[A-Za-z0-9_.:[\]*@,/-]{1,256}$/;
/** HAProxy's proxy-name characters. */
const PROXY_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

export function registerHaproxyConfig(program: Command): void {
  program
    .command('haproxy-config')
    .description('print the haproxy.cfg lines haproxy-certd needs, and write the files they load (crt-list, maps) if missing')
    .option('--bind <addr>', 'where HAProxy accepts TLS', ':443')
    .option('--http-bind <addr>', 'where HAProxy answers ACME HTTP-01 (with an http-01 issuer)', ':80')
    .option('--backend <name>', 'the backend HTTPS requests go to (else they get a 503 saying so)')
    .option('--merge <haproxy.cfg>', 'print only what this haproxy.cfg lacks')
    .action(async (o: HaproxyConfigOptions) => {
      for (const [flag, value] of [['--bind', o.bind], ['--http-bind', o.httpBind]] as const) {
        if (!BIND.test(value)) throw new UsageError(`${flag} ${JSON.stringify(value)}: give an HAProxy bind address such as :443 or 127.0.0.1:8443`);
      }
      if (o.backend !== undefined && !PROXY_NAME.test(o.backend)) throw new UsageError(`--backend ${JSON.stringify(o.backend)}: give a backend name (letters, digits, _ . : -)`);
      const ctx = await CliContext.load(program.opts<GlobalOptions>());
      const { config } = ctx;
      const log = await ctx.logger();
      const { writeInitialHaproxyFiles } = await import('../../daemon/initial-files.js');
      const existing = o.merge ? await readMerged(o.merge, o.backend) : undefined;
      const runtime = daemonRuntime(config);
      const unprivileged = existing?.statsSockets.find((s) => socketServes(s.address, runtime) && !s.admin);
      if (unprivileged) process.stderr.write(`note: ${o.merge} has \`stats socket ${unprivileged.address}\` without \`level admin\`: add it, the daemon needs admin level\n`);

      const usesHttp01 = Object.values(config.issuers).some((i) => i.type === 'acme' && i.challenge === 'http-01');
      const acmeHttp = usesHttp01 ? { bind: o.httpBind, acmeMap: certDirLayout(config.haproxy.certDir).acmeMap } : undefined;
      const written = await writeInitialHaproxyFiles(config, log);
      // The Lua action's token derives from the API token: made now if the daemon has not run yet.
      const onDemand = config.onDemand
        ? onDemandSnippetOptions(config, await loadOrCreateToken(config.dataDir, config.api.token), o.bind)
        : undefined;
      if (written.length) process.stderr.write(`wrote what this config loads before the daemon's first run: ${written.join(', ')}\n`);
      process.stdout.write(pasteConfig({ crtList: config.haproxy.crtList, bind: o.bind, backend: o.backend, runtime, acmeHttp, onDemand, existing }));
    });
}

/**
 * The runtime address this HAProxy should offer the daemon: the first unix instance, else the
 * first TCP one, else the discovery port on every address, else Debian's socket path.
 */
function daemonRuntime(config: Config): string {
  const { instances, discover } = config.haproxy;
  const listed = instances.find((i) => i.runtime.startsWith('unix:')) ?? instances[0];
  if (listed) return listed.runtime;
  if (discover) return `tcp:0.0.0.0:${discover.port}`;
  return 'unix:/run/haproxy/admin.sock';
}

async function readMerged(file: string, backend: string | undefined): Promise<ExistingConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--merge ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give the haproxy.cfg to merge into`);
  }
  const existing = readExistingConfig(text);
  if (backend !== undefined && !existing.sections.has(`backend ${backend}`) && !existing.sections.has(`listen ${backend}`)) {
    const have = [...existing.sections].filter((s) => s.startsWith('backend ') || s.startsWith('listen ')).map((s) => s.split(' ')[1]);
    throw new UsageError(`--backend ${backend}: ${file} has no such backend (${have.length ? `it has: ${have.join(', ')}` : 'it has none'}); add it or name another`);
  }
  return existing;
}
