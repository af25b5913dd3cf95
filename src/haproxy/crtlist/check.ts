import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fsErrorCode } from '../../core/atomic-write.js';
import { parseBundle, pemBlocks } from '../../core/bundle.js';
import { errorCode, errorKind } from '../../core/errors.js';

/*
 * Whether HAProxy can start with a crt-list: the file exists, lists at least one certificate
 * (a `bind … crt-list` with none refuses to start), every certificate parses with its key, and
 * every ca-file / crl-file its options name exists. Used by `haproxy-certd wait` before HAProxy
 * starts, so it reads files only: no config, no daemon.
 */

/** The crt-list was still not ready when the wait ended. */
export class CrtListIncompleteError extends errorKind('CERTD_E_CRT_LIST_INCOMPLETE', 'unavailable') {}

/** One reason the crt-list is not ready. */
export interface CrtListProblem {
  /** The file at fault (the crt-list itself, a certificate, a CA file). */
  path: string;
  /** 1-based line in the crt-list, when the problem comes from a line. */
  line?: number;
  reason: string;
}

export interface CrtListReport {
  crtList: string;
  complete: boolean;
  /** Certificate lines read. */
  certificates: number;
  problems: CrtListProblem[];
}

export interface CheckOptions {
  /**
   * Where relative paths in the list resolve, like HAProxy's crt-base (default: the crt-list's
   * folder). HAProxy itself resolves them against crt-base or its working directory: lists written
   * by haproxy-certd hold absolute paths only.
   */
  base?: string;
  now?: Date;
}

/** A crt-list line split into its parts (see HAProxy's "crt-list" docs). */
export interface CrtListLine {
  cert: string;
  /** Words between `[` and `]`. */
  options: string[];
  sni: string[];
}

/** Options naming a file HAProxy opens at start. */
const FILE_OPTIONS = new Set(['ca-file', 'crl-file']);

/**
 * Splits one crt-list line; undefined for blank lines and comments. Throws a plain Error for an
 * unterminated `[options]`. Pure.
 */
export function parseCrtListLine(text: string): CrtListLine | undefined {
  const line = text.trim();
  if (line === '' || line.startsWith('#')) return undefined;
  const cert = line.split(/\s+/, 1)[0]!;
  let rest = line.slice(cert.length).trim();
  let options: string[] = [];
  if (rest.startsWith('[')) {
    const end = rest.indexOf(']');
    if (end < 0) throw new Error('"[" without a closing "]"');
    options = rest.slice(1, end).trim().split(/\s+/).filter(Boolean);
    rest = rest.slice(end + 1).trim();
  }
  return { cert, options, sni: rest === '' ? [] : rest.split(/\s+/) };
}

/** Checks a crt-list once. Never throws for what it finds: every finding is a problem in the report. */
export async function checkCrtList(crtList: string, opts: CheckOptions = {}): Promise<CrtListReport> {
  const report: CrtListReport = { crtList, complete: false, certificates: 0, problems: [] };
  let text: string;
  try {
    text = await readFile(crtList, 'utf8');
  } catch (err) {
    report.problems.push({ path: crtList, reason: fsReason(err) });
    return report;
  }
  const base = opts.base ?? dirname(crtList);
  // A path listed twice is read once; each line still gets its own problem entry.
  const certChecks = new Map<string, Promise<string | undefined>>();
  const fileChecks = new Map<string, Promise<string | undefined>>();
  const pending: Promise<void>[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let parsed: CrtListLine | undefined;
    try {
      parsed = parseCrtListLine(lines[i]!);
    } catch (err) {
      report.problems.push({ path: crtList, line: lineNo, reason: (err as Error).message });
      continue;
    }
    if (!parsed) continue;
    report.certificates++;
    const certPath = resolve(base, parsed.cert);
    const checks: [string, Promise<string | undefined>][] = [[certPath, memo(certChecks, certPath, () => certProblem(certPath, opts.now))]];
    parsed.options.forEach((option, j, options) => {
      if (!FILE_OPTIONS.has(option)) return;
      const named = options[j + 1];
      if (named === undefined) {
        report.problems.push({ path: crtList, line: lineNo, reason: `${option} names no file` });
        return;
      }
      const path = resolve(base, named);
      checks.push([path, memo(fileChecks, path, () => readableProblem(path, option))]);
    });
    for (const [path, check] of checks) {
      pending.push(check.then((reason) => void (reason && report.problems.push({ path, line: lineNo, reason }))));
    }
  }
  await Promise.all(pending);
  if (report.certificates === 0 && report.problems.length === 0) {
    report.problems.push({ path: crtList, reason: 'lists no certificate (HAProxy refuses a crt-list bind without one)' });
  }
  report.problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  report.complete = report.problems.length === 0;
  return report;
}

export interface WaitOptions extends CheckOptions {
  timeoutMs: number;
  /** Pause between checks (default 250 ms). */
  intervalMs?: number;
  signal?: AbortSignal;
}

/**
 * Checks until the crt-list is complete or `timeoutMs` has passed; resolves with the last
 * report (complete or not). Rejects only when `signal` aborts.
 */
export async function waitForCrtList(crtList: string, opts: WaitOptions): Promise<CrtListReport> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const report = await checkCrtList(crtList, opts);
    const left = deadline - Date.now();
    if (report.complete || left <= 0) return report;
    await sleep(Math.min(opts.intervalMs ?? 250, left), undefined, { signal: opts.signal });
  }
}

const SHOWN_PROBLEMS = 10;

/** The problems of a report on one line, for an operator: `path (line N): reason; …`. Pure. */
export function describeProblems(report: CrtListReport): string {
  const shown = report.problems.slice(0, SHOWN_PROBLEMS).map((p) => `${p.path}${p.line ? ` (line ${p.line})` : ''}: ${p.reason}`);
  const more = report.problems.length - shown.length;
  return `${shown.join('; ')}${more > 0 ? `; and ${more} more` : ''}`;
}

/** Why a certificate file cannot be served, or undefined when it can. */
async function certProblem(path: string, now?: Date): Promise<string | undefined> {
  let text: string;
  let keyText: string | undefined;
  try {
    text = await readFile(path, 'utf8');
    keyText = await sidecarKey(path, text);
  } catch (err) {
    return fsReason(err);
  }
  try {
    parseBundle(text, keyText ?? '', { now, checkLeaf: false });
    return undefined;
  } catch (err) {
    // Only when the key is the one thing missing; a truncated certificate needs no word on keys.
    const keyOnly = keyText === undefined && !KEY_BLOCK.test(text) && pemBlocks(text).some((b) => b.type === 'CERTIFICATE');
    const hint = keyOnly ? ` (nor is there a ${path}.key)` : '';
    return `${(err as Error).message}${hint} [${errorCode(err) ?? (err as Error).name}]`;
  }
}

const KEY_BLOCK = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;

/*
 * HAProxy's default `ssl-load-extra-files all` loads `<crt>.key` when the PEM itself holds no
 * key, so such a pair is complete too. Undefined when the PEM has its key or there is no sidecar.
 */
async function sidecarKey(path: string, text: string): Promise<string | undefined> {
  if (KEY_BLOCK.test(text)) return undefined;
  try {
    return await readFile(`${path}.key`, 'utf8');
  } catch (err) {
    if (fsErrorCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

async function readableProblem(path: string, option: string): Promise<string | undefined> {
  try {
    await access(path, constants.R_OK);
    return undefined;
  } catch (err) {
    return `${option}: ${fsReason(err)}`;
  }
}

function fsReason(err: unknown): string {
  const code = fsErrorCode(err);
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'EACCES') return 'cannot be read (permission denied)';
  return (err as Error).message;
}

function memo<T>(cache: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> {
  let p = cache.get(key);
  if (!p) cache.set(key, (p = make()));
  return p;
}
