import { Command } from 'commander';
import { VERSION } from '../core/version.js';
import { registerCommands } from './commands/index.js';
import { EXIT_CODES_HELP } from './exit-codes.js';

/**
 * The whole command line, built without running anything: main.ts parses argv with it, and the
 * shell completion and man page are generated from it, so neither can miss a command or option.
 */
export function buildProgram(): Command {
  const program = new Command('haproxy-certd')
    .description('Automatic TLS certificates for HAProxy, hot-loaded without reloads')
    .version(VERSION, '-V, --version', 'print the version and exit')
    .option('-c, --config <file>', 'config file (else $CERTD_CONFIG, ./certd.yaml, /etc/haproxy-certd/certd.yaml)')
    .addHelpText('after', EXIT_CODES_HELP)
    .showHelpAfterError()
    .exitOverride();
  registerCommands(program);
  return program;
}
