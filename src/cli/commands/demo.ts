import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { EMBEDDED_ISSUER } from '../../daemon/issuer-ids.js';
import { PACKAGE_ROOT } from '../../core/version.js';
import { untilSignal } from './run.js';

/** `*.localhost` names resolve to loopback by spec (RFC 6761); curl's --resolve pins them anyway. */
const DEMO_SUFFIX = 'demo.localhost';
const DEMO_NAMES = ['app', 'api', 'www'].map((n) => `${n}.${DEMO_SUFFIX}`);

function demoYaml(port: number, apiPort: number): string {
  return `# written by \`haproxy-certd demo\`: the embedded defaults, spelled out
dataDir: ./data
store: { type: fs }
haproxy:
  instances: [ { runtime: "unix:./haproxy/admin.sock", name: demo-haproxy } ]
  certDir: ./haproxy/certs
issuers:
  ${EMBEDDED_ISSUER}: { type: local-ca, keyType: ecdsa-p256, validity: 30d }
onDemand:                     # any *.${DEMO_SUFFIX} gets a certificate at its first handshake
  issuer: ${EMBEDDED_ISSUER}
  allow: ["*.${DEMO_SUFFIX}"]
  maxCertificates: 1000
  maxWait: 5s
  rateLimit: { perMinute: 600, burst: 100 }
  # forge: true               # HAProxy signs the first handshake itself, the real certificate follows (docs/ondemand.md)
api: { listen: "127.0.0.1:${apiPort}" }
# HAProxy's TLS listener for this demo: 127.0.0.1:${port}
`;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run a managed HAProxy + the daemon with a local CA on loopback, and show how to try it')
    .option('--port <n>', 'HAProxy TLS port on 127.0.0.1', '8443')
    .option('--api-port <n>', 'daemon API port on 127.0.0.1', '9180')
    .option('--dir <dir>', 'where the demo keeps its config, store and HAProxy files', './demo')
    .action(async (o: { port: string; apiPort: string; dir: string }) => {
      const port = Number(o.port);
      const apiPort = Number(o.apiPort);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--port ${o.port}: give a TCP port`);
      if (!Number.isInteger(apiPort) || apiPort < 1 || apiPort > 65535) throw new UsageError(`--api-port ${o.apiPort}: give a TCP port`);
      const dir = resolve(o.dir);
      await mkdir(join(dir, 'haproxy'), { recursive: true, mode: 0o700 });
      const configFile = join(dir, 'certd.yaml');
      await writeFile(configFile, demoYaml(port, apiPort));
      // Loaded here, not at the CLI's start: other commands never need the daemon's modules.
      const [{ loadConfig }, { createLogger }, { Daemon }, { onDemandSnippetOptions }, { demoHaproxyConfig }, { ManagedHaproxy }, { LocalCaIssuer }] = await Promise.all([
        import('../../config/load.js'),
        import('../../core/log.js'),
        import('../../daemon/daemon.js'),
        import('../../daemon/haproxy-snippets.js'),
        import('../../haproxy/assets/config.js'),
        import('../../haproxy/managed/managed-haproxy.js'),
        import('../../issuers/local-ca/index.js'),
      ]);
      const config = await loadConfig(configFile);
      const log = createLogger(process.env.CERTD_LOG_LEVEL ?? 'warn');

      const daemon = await Daemon.start(config, { log });
      const haproxyCfg = join(dir, 'haproxy', 'haproxy.cfg');
      await writeFile(
        haproxyCfg,
        demoHaproxyConfig({
          adminSocket: join(dir, 'haproxy', 'admin.sock'),
          crtList: config.haproxy.crtList,
          bind: `127.0.0.1:${port}`,
          onDemand: onDemandSnippetOptions(config, daemon.token, `127.0.0.1:${port}`),
        }),
      );
      const haproxy = new ManagedHaproxy({ configFile: haproxyCfg, masterSocket: join(dir, 'haproxy', 'master.sock'), runtimeSocket: join(dir, 'haproxy', 'admin.sock') });
      try {
        await haproxy.start();
        for (const name of DEMO_NAMES) await daemon.service.ensure([name], { origin: 'api' });
        const rootPem = (await new LocalCaIssuer(daemon.store, { id: EMBEDDED_ISSUER }).ca()).rootPem;
        const caFile = join(dir, 'ca.pem');
        await writeFile(caFile, rootPem);
        printHowTo({ port, caFile, configFile });
        await untilSignal();
      } finally {
        process.stderr.write('stopping HAProxy and the daemon…\n');
        await haproxy.stop();
        await daemon.stop();
      }
    });
}

function printHowTo(o: { port: number; caFile: string; configFile: string }): void {
  // Short paths when they are under the current directory, absolute otherwise.
  const rel = (p: string) => {
    const r = relative(process.cwd(), p);
    return r && !r.startsWith('..') ? r : p;
  };
  // Installed (npm install -g), the command is on PATH; in a checkout it is the built entry point.
  const installed = basename(process.argv[1] ?? '') === 'haproxy-certd';
  const cli = `${installed ? 'haproxy-certd' : `node ${rel(join(PACKAGE_ROOT, 'dist/cli/main.js'))}`} --config ${rel(o.configFile)}`;
  const curl = (name: string) => `curl --cacert ${rel(o.caFile)} --resolve ${name}:${o.port}:127.0.0.1 https://${name}:${o.port}/`;
  console.log(`
haproxy-certd demo is running: HAProxy on https://127.0.0.1:${o.port}, certificates from a local CA.

Try a name it already serves (verified against the demo CA):
  ${curl(DEMO_NAMES[0]!)}

Any other *.${DEMO_SUFFIX} name gets its certificate at the first handshake (on-demand):
  ${curl(`anything-you-like.${DEMO_SUFFIX}`)}

Add a name from the CLI — no reload, HAProxy's worker pid stays the same:
  ${cli} issue shop.${DEMO_SUFFIX}
  ${curl(`shop.${DEMO_SUFFIX}`)}

See what is deployed:   ${cli} list
Remove a name:          ${cli} remove shop.${DEMO_SUFFIX}

Ctrl-C stops HAProxy and the daemon.`);
}
