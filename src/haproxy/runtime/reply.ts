import {
  type CertdError,
  HaproxyCommandError,
  HaproxyExistsError,
  HaproxyInUseError,
  HaproxyLockedError,
  HaproxyNoTransactionError,
  HaproxyNotFoundError,
  HaproxyTxnMismatchError,
} from '../../core/errors.js';

/*
 * Reply texts of HAProxy 2.6.12, measured against the real binary (see test/runtime*.test.ts).
 * A command succeeds only when its reply matches its success pattern: unknown text is never
 * mistaken for success. Everything here is pure and safe to call concurrently.
 */

/** Success patterns, one per command kind; capture groups name what HAProxy says it acted on. */
export const OK = {
  newCert: /^New empty certificate store '(.+)'!$/,
  /** 2.6.12 names the *open transaction's* path here, which may not be the one we sent. */
  setCert: /^Transaction (created|updated) for certificate (.+)!$/,
  /** One dot per batch of binds updated follows the path: "Committing /p.pem..\nSuccess!". */
  commit: /^Committing (\S+?)\.*\nSuccess!$/,
  /** Also the reply of `abort ssl ca-file`. */
  abort: /^Transaction aborted for certificate '(.+)'!$/,
  delCert: /^Certificate '(.+)' deleted!$/,
  newCaFile: /^New CA file created '(.+)'!$/,
  setCaFile: /^transaction (created|updated) for CA (.+)!$/,
  delCaFile: /^CA file '(.+)' deleted!$/,
  addCrtList: /^Inserting certificate '(.+)' in crt-list '(.+)'\.\nSuccess!$/,
  delCrtList: /^Entry '(.+)' deleted in crtlist '(.+)'!$/,
  /** add/set/del/clear map answer nothing on success. */
  empty: /^$/,
} as const;

/** "Can't show!\nOperations on …" for certificates, "Can't update: operations on …" for CA and CRL files. */
const LOCKED = /operations on certificates are currently locked!/i;
const FOREIGN_TXN = /^The ongoing transaction is about '(.+)' but you are trying to/m;
const NO_TXN = /No ongoing transaction!/;
const EXISTS = /already exists!/;
const IN_USE = /in use, can't be deleted!/;
const NOT_FOUND = new RegExp(
  [
    "doesn't exist!",
    'does not exist!',
    'not referenced by the configuration!',
    "can't be found in crt-list",
    'Not found or the certificate is a bundle!',
    "didn't find the specified filename",
    'Unknown map identifier',
    '^Key not found\\.$',
    '^entry not found\\.$',
  ].join('|'),
  'm',
);
/** `del ssl crt-list L P` when P has several lines: "... (2, 3)!". */
const SEVERAL_ENTRIES = /found the certificate '.+' in several entries, please specify a line number preceded by colons \(([\d, ]+)\)!/;

/**
 * Maps a failed reply to the typed error callers act on: locked (retry), exists, in use, no
 * transaction, transaction mismatch (the 2.6.12 bug), not found, or a generic command failure
 * carrying HAProxy's own text. `command` is the command line without its payload (no secrets).
 */
export function replyError(command: string, body: string): CertdError {
  const said = body.trim() || '(empty reply)';
  const what = `haproxy: \`${command}\`: ${said.replace(/\n+/g, ' / ')}`;
  if (LOCKED.test(body)) {
    return new HaproxyLockedError(`${what} — another certificate operation is being committed; retry shortly`);
  }
  const foreign = FOREIGN_TXN.exec(body);
  if (foreign) {
    return new HaproxyTxnMismatchError(
      `${what} — another client left a transaction open on ${foreign[1]}; abort it or let certd's stale-transaction cleanup do it`,
    );
  }
  if (NO_TXN.test(body)) return new HaproxyNoTransactionError(`${what} — set the certificate first, then commit`);
  if (EXISTS.test(body)) return new HaproxyExistsError(what);
  if (IN_USE.test(body)) return new HaproxyInUseError(`${what} — remove its crt-list entries first`);
  if (NOT_FOUND.test(body)) return new HaproxyNotFoundError(what);
  if (/^Permission denied/m.test(body)) {
    return new HaproxyCommandError(`${what} — give the stats socket "level admin"`);
  }
  if (/^Unknown command/.test(body)) {
    return new HaproxyCommandError(`haproxy: \`${command}\`: unknown command — HAProxy 2.6 or newer with "level admin" is needed`);
  }
  return new HaproxyCommandError(what);
}

/** Whether HAProxy refused because another certificate operation holds its lock (retryable). */
export function isLocked(body: string): boolean {
  return LOCKED.test(head(body));
}

/** A refusal is a few short lines (HAProxy's cli_err), so the patterns never scan a 100,000-line listing. */
const REFUSAL_MAX_CHARS = 4096;

function head(body: string): string {
  return body.length > REFUSAL_MAX_CHARS ? body.slice(0, REFUSAL_MAX_CHARS) : body;
}

/**
 * For `show` commands, whose success has no fixed text: the typed error when the reply is one of
 * the known refusals, else undefined (the reply is the listing).
 */
export function showError(command: string, body: string): CertdError | undefined {
  const start = head(body);
  const refused = LOCKED.test(start) || NOT_FOUND.test(start) || /^(Unknown command|Permission denied|Can't display|Can't show)/.test(start);
  return refused ? replyError(command, body) : undefined;
}

/** Returns the match of `pattern` on `body`, or throws the reply's typed error. */
export function expectReply(command: string, body: string, pattern: RegExp): RegExpExecArray {
  const m = pattern.exec(body);
  if (!m) throw replyError(command, body);
  return m;
}

/** The path of the transaction HAProxy says is open when it refused ours, if that is the reply. */
export function foreignTransaction(body: string): string | undefined {
  return FOREIGN_TXN.exec(body)?.[1];
}

/** Line numbers offered by `del ssl crt-list` when a certificate has several entries. */
export function severalEntryLines(body: string): number[] | undefined {
  const m = SEVERAL_ENTRIES.exec(body);
  return m ? m[1]!.split(',').map((n) => Number(n.trim())) : undefined;
}

/** What `show info` tells us; a changed pid means a new worker that lost runtime state. */
export interface RuntimeInfo {
  pid: number;
  uptimeSec: number;
  version: string;
  raw: Record<string, string>;
}

export function parseInfo(body: string): RuntimeInfo {
  const raw = keyValues(body);
  const pid = Number(raw.Pid);
  const uptimeSec = Number(raw.Uptime_sec);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isFinite(uptimeSec) || raw.Version === undefined) {
    throw new HaproxyCommandError(`haproxy: \`show info\`: unexpected reply ${JSON.stringify(body.slice(0, 120))}`);
  }
  return { pid, uptimeSec, version: raw.Version, raw };
}

/** `show ssl cert` / `show ssl ca-file`: loaded paths, and the open transaction (`*path`) if any. */
export interface StoreListing {
  certs: string[];
  transaction?: string;
}

/** Parses `show ssl cert`. */
export function parseSslCertList(body: string): StoreListing {
  return parseListing(body, (line) => line);
}

/** Parses `show ssl ca-file` (lines read `/path - 1 certificate(s)`). */
export function parseCaFileList(body: string): StoreListing {
  return parseListing(body, (line) => line.replace(/ - \d+ certificate\(s\)$/, ''));
}

function parseListing(body: string, pathOf: (line: string) => string): StoreListing {
  const out: StoreListing = { certs: [] };
  let section = '';
  for (const line of body.split('\n')) {
    if (line.startsWith('# ')) section = line.slice(2);
    else if (line === '') continue;
    else if (section === 'transaction' && line.startsWith('*')) out.transaction = pathOf(line.slice(1));
    else if (section === 'filename') out.certs.push(pathOf(line));
  }
  return out;
}

/** `show ssl cert <path>`. Fields are absent for an empty (new, never committed) store. */
export interface SslCertDetails {
  path: string;
  /** "Used", "Unused" or "Empty". */
  status: string;
  serial?: string;
  notBefore?: string;
  notAfter?: string;
  sha1?: string;
  subject?: string;
  issuer?: string;
  san: string[];
  raw: Record<string, string>;
}

export function parseSslCertDetails(body: string): SslCertDetails {
  const raw = keyValues(body);
  if (raw.Filename === undefined) {
    throw new HaproxyCommandError(`haproxy: \`show ssl cert\`: unexpected reply ${JSON.stringify(body.slice(0, 120))}`);
  }
  const sanText = raw['Subject Alternative Name'];
  return {
    path: raw.Filename,
    status: raw.Status ?? '',
    serial: raw.Serial,
    notBefore: raw.notBefore,
    notAfter: raw.notAfter,
    sha1: raw['SHA1 FingerPrint'],
    subject: raw.Subject,
    issuer: raw.Issuer,
    san: sanText ? sanText.split(/,\s*/).map((s) => s.replace(/^[A-Za-z ]+:/, '')) : [],
    raw,
  };
}

/** One crt-list line as HAProxy holds it now. */
export interface CrtListEntry {
  path: string;
  /** Line number for `del ssl crt-list L path:line`. */
  line?: number;
  /** Options as `keyword value` strings, e.g. "alpn h2,http/1.1", "no-ca-names". */
  options: string[];
  /** SNI filters; empty means the certificate's own names. */
  sni: string[];
}

/* crt-list keywords that take no value; every other keyword takes exactly one. */
const FLAG_KEYWORDS = new Set(['allow-0rtt', 'no-ca-names', 'no-alpn']);

/**
 * Parses `show ssl crt-list [-n] <list>`: lines `path[:line] [[options]] [sni…]`. Read with
 * indexOf, not a regular expression per line: a reconcile parses every line of the list each pass,
 * and the regex cost ~2.7 µs a line (270 ms of the daemon's CPU per pass and instance at 100,000).
 */
export function parseCrtList(body: string): CrtListEntry[] {
  const entries: CrtListEntry[] = [];
  // 2.6 prints the alpn value with a stray NUL (its length-prefixed wire form): drop it.
  const text = body.includes('\0') ? body.replace(/\0/g, '') : body;
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const entry = crtListEntry(text.slice(start, end));
    if (entry) entries.push(entry);
    start = end + 1;
  }
  return entries;
}

/** One line of `show ssl crt-list`, undefined for a comment or an empty line. */
function crtListEntry(text: string): CrtListEntry | undefined {
  if (text === '' || text.startsWith('#')) return undefined;
  const space = text.indexOf(' ');
  const head = space < 0 ? text : text.slice(0, space);
  let rest = space < 0 ? '' : text.slice(space + 1);
  // `path:line` (the `-n` form); a path may hold colons itself, the line number is the last part.
  const colon = head.lastIndexOf(':');
  const lineText = colon > 0 ? head.slice(colon + 1) : '';
  const numbered = lineText !== '' && isDigits(lineText);
  let options: string[] = [];
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    const after = close < 0 ? undefined : rest.slice(close + 1);
    if (after !== undefined && (after === '' || after.startsWith(' '))) {
      options = groupOptions(rest.slice(1, close));
      rest = after.slice(1);
    }
  }
  return {
    path: numbered ? head.slice(0, colon) : head,
    line: numbered ? Number(lineText) : undefined,
    options,
    sni: words(rest),
  };
}

/** The space-separated words of `text` (no empty ones), without a filter pass in the usual case of single spaces. */
function words(text: string): string[] {
  if (text === '') return [];
  const parts = text.split(' ');
  return text.includes('  ') || text.startsWith(' ') || text.endsWith(' ') ? parts.filter(Boolean) : parts;
}

function isDigits(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

function groupOptions(text: string): string[] {
  const tokens = text.split(' ').filter(Boolean);
  const out: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (FLAG_KEYWORDS.has(t) || i + 1 >= tokens.length) out.push(t);
    else out.push(`${t} ${tokens[++i]}`);
  }
  return out;
}

/** One map entry; `ref` is HAProxy's entry id (usable as `#ref`). */
export interface MapEntry {
  ref: string;
  key: string;
  value: string;
}

/** Parses `show map <map>`: lines `0x55.. key value`. */
export function parseMap(body: string): MapEntry[] {
  const out: MapEntry[] = [];
  for (const line of body.split('\n')) {
    const m = /^(\S+) (\S+) ?(.*)$/.exec(line);
    if (m) out.push({ ref: m[1]!, key: m[2]!, value: m[3]! });
  }
  return out;
}

function keyValues(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of body.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}
