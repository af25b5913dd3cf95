import { ConfigError } from '../core/errors.js';

/** One thing wrong with a config, located as precisely as the source allows. */
export interface ConfigProblem {
  /** The config file as the operator named it; absent for configs built in code. */
  file?: string;
  /** 1-based line and column; absent when the source has no positions (configFromObject). */
  line?: number;
  col?: number;
  /** Key path like `certificates[0].tls.minVersion`; empty for the whole document. */
  path: string;
  message: string;
}

/**
 * The config is invalid. Carries every problem found in one pass, so an operator fixes them all
 * at once; `code` stays CERTD_E_CONFIG like any ConfigError.
 */
export class ConfigValidationError extends ConfigError {
  readonly problems: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[]) {
    const lines = problems.map(formatProblem);
    const head = problems.length === 1 ? '' : `${problems.length} problems in the config:\n  `;
    super(head + lines.join('\n  '));
    this.problems = problems;
  }
}

/** `certd.yaml:12:7 certificates[0].tls.minVersion: expected …`, leaving out what is unknown. */
export function formatProblem(p: ConfigProblem): string {
  let where = p.file ?? '';
  if (p.file !== undefined && p.line !== undefined) where += `:${p.line}${p.col !== undefined ? `:${p.col}` : ''}`;
  const subject = [where, p.path].filter((s) => s !== '').join(' ');
  return subject === '' ? p.message : `${subject}: ${p.message}`;
}

/** Renders a key path the way operators read it: `issuers.le.eab`, `certificates[0]`, `headers["X-Key"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}
