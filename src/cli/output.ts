import type { DeployOutcome } from '../haproxy/deploy/deployer.js';

/**
 * `--json`: the command's one JSON document on stdout, nothing else there (notes go to stderr);
 * otherwise the text. Exit codes are the same either way.
 */
export function emit(json: boolean | undefined, doc: unknown, text: () => string): void {
  process.stdout.write(`${json ? JSON.stringify(doc, null, 2) : text()}\n`);
}

/**
 * A result not served by every instance fails the command (exit 1) so a script notices; the
 * daemon goes on retrying the instances that did not take it.
 */
export function failIfPending(d: DeployOutcome | undefined): void {
  if (d && d.failed.length > 0) process.exitCode = 1;
}

/** "; served by 1/2 instance(s)" and one line per instance still pending. */
export function deployNote(d: DeployOutcome | undefined): string {
  if (!d) return '';
  const failed = d.failed.map((f) => `\n  not yet on ${f.instance}: ${f.error} (retrying)`).join('');
  return `; served by ${d.ok.length}/${d.ok.length + d.failed.length} instance(s)${failed}`;
}
