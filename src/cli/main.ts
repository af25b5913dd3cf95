#!/usr/bin/env node
import { CommanderError } from 'commander';
import { CertdError, outcomeOf } from '../core/errors.js';
import { buildProgram } from './program.js';

const program = buildProgram();

/** A reader that stopped reading (`list --json | head`) is not a failure: end quietly, as `cat` would. */
const readerGone = (err: unknown): boolean => (err as NodeJS.ErrnoException | undefined)?.code === 'EPIPE';
process.stdout.on('error', (err) => {
  if (!readerGone(err)) throw err;
  process.exit();
});

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else if (readerGone(err)) {
    process.exit();
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
