import type { z } from 'zod';
import { formatPath, type ConfigProblem } from './problems.js';

/** Where a key path sits in the source: `key` for the key itself, `value` for what follows it. */
export type Locator = (path: readonly PropertyKey[], part: 'key' | 'value') => { line: number; col: number } | undefined;

const NOUNS: Readonly<Record<string, string>> = {
  object: 'a mapping (key: value)',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
};

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'number') return 'a number';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return typeof v;
}

function shown(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

function allowedKeys(inst: unknown): string[] {
  const shape = (inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod?.def?.shape;
  return shape ? Object.keys(shape) : [];
}

/** `cert_dir`, `CertDir` or `cert-dir` for `certDir`: same letters once case and separators go. */
function suggestion(key: string, allowed: readonly string[]): string {
  const fold = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  const match = allowed.find((a) => fold(a) === fold(key));
  return match ? ` (did you mean ${match}?)` : '';
}

/**
 * Zod error map for config parsing: messages say what is expected and, except for secrets-prone
 * free text, what was found. Messages set on a schema itself take precedence over these.
 */
export const configErrorMap: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case 'invalid_type': {
      const noun = NOUNS[iss.expected] ?? iss.expected;
      // Type errors never echo the value: it may be a token or password in the wrong place.
      return iss.input === undefined ? `required: expected ${noun}` : `expected ${noun}, got ${kindOf(iss.input)}`;
    }
    case 'invalid_value': {
      const values = iss.values.map((v) => String(v));
      const want = values.length === 1 ? shown(iss.values[0]) : `one of ${values.join(', ')}`;
      return iss.input === undefined ? `required: expected ${want}` : `expected ${want}; got ${shown(iss.input)}`;
    }
    case 'unrecognized_keys': {
      const allowed = allowedKeys(iss.inst);
      const keys = iss.keys.map((k) => `"${k}"${suggestion(k, allowed)}`).join(', ');
      return `unknown key${iss.keys.length > 1 ? 's' : ''} ${keys}; allowed here: ${allowed.join(', ')}`;
    }
    case 'invalid_union': {
      if (iss.discriminator === undefined || !('options' in iss) || !Array.isArray(iss.options)) return undefined;
      const want = `one of ${iss.options.map(String).join(', ')}`;
      const got = (iss.input as Record<string, unknown> | undefined)?.[iss.discriminator];
      return got === undefined ? `required: ${iss.discriminator} must be ${want}` : `expected ${want}; got ${shown(got)}`;
    }
    case 'invalid_key':
      return `invalid key ${shown(iss.input)}: ${iss.issues.map((i) => i.message).join('; ')}`;
    case 'too_small':
      if (iss.origin === 'string' && Number(iss.minimum) === 1) return 'must not be empty';
      if (iss.origin === 'array') return `list at least ${iss.minimum} entr${Number(iss.minimum) === 1 ? 'y' : 'ies'}`;
      return `must be ${iss.inclusive ? 'at least' : 'more than'} ${iss.minimum}`;
    case 'too_big':
      if (iss.origin === 'array') return `list at most ${iss.maximum} entries`;
      if (iss.origin === 'string') return `at most ${iss.maximum} characters`;
      return `must be ${iss.inclusive ? 'at most' : 'less than'} ${iss.maximum}`;
    default:
      return undefined;
  }
};

/**
 * Turns zod issues into located problems, sorted by position so they read top to bottom.
 * An unknown key points at the key itself; a missing one at the mapping that should hold it.
 */
export function issuesToProblems(issues: readonly z.core.$ZodIssue[], locate?: Locator, file?: string): ConfigProblem[] {
  const problems = issues.map((iss): ConfigProblem => {
    let path: readonly PropertyKey[] = iss.path;
    let part: 'key' | 'value' = 'value';
    if (iss.code === 'unrecognized_keys') {
      path = [...iss.path, iss.keys[0] ?? ''];
      part = 'key';
      const at = locate?.(path, part);
      return { file, ...at, path: formatPath(iss.keys.length === 1 ? path : iss.path), message: iss.message };
    }
    if (iss.code === 'invalid_key') part = 'key';
    return { file, ...locate?.(path, part), path: formatPath(path), message: iss.message };
  });
  return sortProblems(problems);
}

/** Stable sort by line, then column; unlocated problems last. */
function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  const rank = (p: ConfigProblem) => (p.line ?? Number.MAX_SAFE_INTEGER) * 100_000 + (p.col ?? 0);
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => rank(a.p) - rank(b.p) || a.i - b.i)
    .map(({ p }) => p);
}
