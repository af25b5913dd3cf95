import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type ScalarTag } from 'yaml';
import { CertdError } from '../core/errors.js';
import { substituteEnv, type Env } from './env.js';
import type { Locator } from './issues.js';
import { formatPath, type ConfigProblem } from './problems.js';

/** A config file read into plain data, with a way back from key paths to lines. */
export interface YamlSource {
  /** The document as plain data; undefined when the text has syntax errors. */
  value: unknown;
  /** Syntax and `${VAR}` problems; when any, validation should not run. */
  problems: ConfigProblem[];
  locate: Locator;
}

/**
 * Parses YAML text keeping positions, then substitutes `${VAR}` in scalar values (keys are left
 * alone). Substituting after parsing, not in the raw text, keeps positions exact and means a
 * variable's value can never change the document's structure.
 */
export function readYamlSource(text: string, file: string, env: Env): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => lineCounter.linePos(offset);
  const problems = syntaxProblems(doc, text, file, at);
  const locate = locator(doc, at);
  if (problems.length > 0) return { value: undefined, problems, locate };

  substituteAll(doc.contents, [], {
    doc,
    env,
    onError: (node, path, err) => {
      problems.push({ file, ...nodePos(node, at), path: formatPath(path), message: err.message });
    },
  });
  if (problems.length > 0) return { value: undefined, problems, locate };
  try {
    return { value: withoutNulls(doc.toJS({ maxAliasCount: 100 })), problems, locate };
  } catch (err) {
    // toJS refuses alias expansion past maxAliasCount (a "billion laughs" file).
    const message = `YAML: ${err instanceof Error ? err.message : String(err)}`;
    return { value: undefined, problems: [{ file, line: 1, col: 1, path: '', message }], locate };
  }
}

/*
 * After a syntax error the parser reports every following token on the line as unexpected too:
 * keep the first error of each line. Unquoted `${VAR}` inside `{ … }` is the usual cause in a
 * config (`{` ends a plain scalar there), so say so.
 */
function syntaxProblems(doc: Document, text: string, file: string, at: Pos): ConfigProblem[] {
  const lines = text.split(/\r?\n/);
  const seen = new Set<number>();
  const problems: ConfigProblem[] = [];
  for (const err of doc.errors) {
    const pos = at(err.pos[0]);
    if (seen.has(pos.line)) continue;
    seen.add(pos.line);
    const hint = /(^|[^"'])\$\{/.test(lines[pos.line - 1] ?? '')
      ? ' (inside { … } or [ … ], quote ${VAR} references: "${VAR}")'
      : '';
    problems.push({ file, ...pos, path: '', message: `YAML syntax: ${err.message}${hint}` });
  }
  return problems;
}

type Pos = (offset: number) => { line: number; col: number };

function nodePos(node: Node, at: Pos): { line: number; col: number } | undefined {
  return node.range ? at(node.range[0]) : undefined;
}

function keyText(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}

interface Substitution {
  doc: Document;
  env: Env;
  onError: (node: Node, path: PropertyKey[], err: Error) => void;
}

function substituteAll(node: unknown, path: PropertyKey[], sub: Substitution): void {
  // An alias is substituted where its anchor is defined.
  if (isAlias(node)) return;
  if (isMap(node)) {
    for (const pair of node.items) substituteAll(pair.value, [...path, keyText(pair.key)], sub);
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => substituteAll(item, [...path, i], sub));
  } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('${')) {
    try {
      const text = substituteEnv(node.value, sub.env);
      node.value = node.type === 'PLAIN' ? resolvePlain(sub.doc, text) : text;
    } catch (err) {
      if (!(err instanceof CertdError)) throw err;
      sub.onError(node, path, err);
    }
  }
}

/**
 * An unquoted `port: ${PORT}` should read as a number once substituted, as `port: 9999` does:
 * resolve the text with the document's own schema tags (int, float, bool, null), else a string.
 */
function resolvePlain(doc: Document, text: string): unknown {
  for (const tag of doc.schema.tags) {
    if (!isScalarTag(tag) || tag.default !== true || !tag.test?.test(text)) continue;
    const value = tag.resolve(text, () => undefined, doc.options);
    // Some tags (null) resolve to a Scalar node rather than a plain value.
    return isScalar(value) ? value.value : value;
  }
  return text;
}

function isScalarTag(tag: unknown): tag is ScalarTag {
  return typeof tag === 'object' && tag !== null && (tag as ScalarTag).test instanceof RegExp;
}

/** `key:` with nothing after it reads as "not set", like an absent key, rather than as null. */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = withoutNulls(v);
  return out;
}

function locator(doc: Document, at: Pos): Locator {
  return (path, part) => {
    let node: unknown = doc.contents;
    let key: Node | undefined;
    for (const seg of path) {
      if (isAlias(node)) node = node.resolve(doc);
      if (isMap(node)) {
        const pair = node.items.find((p) => keyText(p.key) === String(seg));
        if (!pair) return posOf(key ?? node);
        key = isScalar(pair.key) ? pair.key : undefined;
        node = pair.value ?? pair.key;
      } else if (isSeq(node) && typeof seg === 'number' && node.items[seg] !== undefined) {
        key = undefined;
        node = node.items[seg];
      } else {
        return posOf(key ?? node);
      }
    }
    return posOf(part === 'key' && key ? key : node) ?? posOf(key);
  };

  function posOf(node: unknown): { line: number; col: number } | undefined {
    return node && typeof node === 'object' && 'range' in node && Array.isArray(node.range) && typeof node.range[0] === 'number'
      ? at(node.range[0])
      : undefined;
  }
}
