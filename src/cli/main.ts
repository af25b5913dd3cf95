#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { CertdError, outcomeOf } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { registerCommands } from './commands/index.js';
import { EXIT_CODES_HELP } from './exit-codes.js';

const program = new Command('haproxy-certd')
  .description('Automatic TLS certificates for HAProxy, hot-loaded without reloads')
  .version(VERSION, '-V, --version', 'print the version and exit')
  .option('-c, --config <file>', 'config file (else $CERTD_CONFIG, ./certd.yaml, /etc/haproxy-certd/certd.yaml)')
  .addHelpText('after', EXIT_CODES_HELP)
  .showHelpAfterError()
  .exitOverride();
registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    // Exit codes (DESIGN §3): 0 ok, 1 failure, 2 usage or config error; never a stack trace
    // unless asked for (CERTD_DEBUG=1), since an operator's script reads the message.
    const code = err instanceof CertdError ? err.code : 'CERTD_E_INTERNAL';
    const message = err instanceof Error ? err.message || err.name : String(err);
    process.stderr.write(`error: ${message} [${code}]\n`);
    if (process.env.CERTD_DEBUG === '1' && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exitCode = outcomeOf(err).exit;
    // A command that failed must not linger with half-started work (timers, sockets).
    process.exit();
  }
}
