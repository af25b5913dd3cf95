import { outcomeFor, type ErrorCategory } from '../core/errors.js';

const CATEGORY_HELP: Record<ErrorCategory, string> = {
  input: 'invalid input: a name, a PEM, a flag, the config',
  'too-large': 'input over a stated limit',
  auth: 'the API token was refused',
  'not-found': 'no such certificate or issuer',
  conflict: 'already exists, or another process holds the lock',
  'rate-limited': 'a limit (ours or the CA\'s) says "not now"',
  upstream: 'the CA, DNS, HAProxy or a source failed',
  unavailable: 'the daemon or an HAProxy instance is down or not ready',
  'storage-full': 'the disk is full',
  internal: 'a bug: please report it with CERTD_DEBUG=1 output',
};

/** The `--help` table, derived from outcomeFor so it cannot drift from what the CLI does. */
function exitCodesHelp(): string {
  const byCode = new Map<number, string[]>();
  for (const category of Object.keys(CATEGORY_HELP) as ErrorCategory[]) {
    const { exit } = outcomeFor(category);
    byCode.set(exit, [...(byCode.get(exit) ?? []), CATEGORY_HELP[category]]);
  }
  return [
    '',
    'Exit codes:',
    '  0  done; `status`: the daemon and every HAProxy instance are up',
    '  1  failed: issue/import/renew/remove not served by every instance (they are named, and retried),',
    '     `status` with the daemon or an instance down, misconfigured or still starting (not in sync yet), or',
    ...byCode.get(1)!.map((why) => `       ${why}`),
    '  2  usage error (unknown option or command), or',
    ...byCode.get(2)!.map((why) => `       ${why}`),
    'Errors go to stderr as "error: MESSAGE [CERTD_E_CODE]"; --json puts one JSON document on stdout.',
  ].join('\n');
}

export const EXIT_CODES_HELP = exitCodesHelp();
