#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { CertdError } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { registerCommands } from './commands/index.js';

/** Exit codes (DESIGN §3): 0 ok, 1 failure, 2 usage or config error. */
const USAGE_CODES = new Set(['CERTD_E_CONFIG', 'CERTD_E_USAGE']);

const program = new Command('haproxy-certd')
  .description('Automatic TLS certificates for HAProxy, hot-loaded without reloads')
  .version(VERSION, '-V, --version', 'print the version and exit')
  .option('-c, --config <file>', 'config file (else $CERTD_CONFIG, ./certd.yaml, /etc/haproxy-certd/certd.yaml)')
  .showHelpAfterError()
  .exitOverride();
registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else if (err instanceof CertdError) {
    process.stderr.write(`error: ${err.message} [${err.code}]\n`);
    process.exitCode = USAGE_CODES.has(err.code) ? 2 : 1;
  } else {
    process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  }
}
