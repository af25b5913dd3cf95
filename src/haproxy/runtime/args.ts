import { InvalidNameError, InvalidPemError } from '../../core/errors.js';
import { validateName } from '../../core/names.js';

/*
 * Everything we interpolate into a runtime command line is checked here first. HAProxy splits
 * command lines on spaces, runs `;`-separated commands, treats `#` as a comment, unescapes
 * backslashes and quotes, reads `<<` as "payload follows" and a leading `@`/`#`/`-` as version,
 * reference or flag: any of these in a name would change the command (runtime-command injection).
 * So names are allowlisted, never escaped. All functions are pure and safe to call concurrently.
 */

const PATH = /^[A-Za-z0-9_/][A-Za-z0-9_.\-/+=,~]*$/;
const MAP_WORD = /^[A-Za-z0-9_.\-/+=,~:*!]+$/;
const OPTION_KEYWORD = /^[a-z][a-z0-9-]*$/;
const OPTION_VALUE = /^[A-Za-z0-9_.\-/+=,~:!@]+$/;
const MAX_ARG = 1024;

/** A cert, CA-file, crt-list or map path as HAProxy names it (may be virtual: nothing on disk). */
export function checkPath(path: unknown, what = 'path'): string {
  const s = String(path);
  if (typeof path !== 'string' || s.length > MAX_ARG || !PATH.test(s) || s.split('/').includes('..')) {
    throw new InvalidNameError(
      `${what} ${show(s)} refused before sending to HAProxy: use letters, digits and _ . - / + = , ~ only ` +
        '(no spaces, quotes, backslashes, ; # : or ..), not starting with . or -',
    );
  }
  return s;
}

/** A map key or value: one word, no characters HAProxy's CLI parser would interpret. */
export function checkMapWord(word: unknown, what: 'key' | 'value'): string {
  const s = String(word);
  if (typeof word !== 'string' || s.length > MAX_ARG || !MAP_WORD.test(s)) {
    throw new InvalidNameError(
      `map ${what} ${show(s)} refused before sending to HAProxy: use letters, digits and _ . - / + = , ~ : * ! only`,
    );
  }
  return s;
}

/**
 * A crt-list option: `keyword` or `keyword value` (e.g. "alpn h2,http/1.1", "verify required",
 * "no-ca-names"). HAProxy judges whether the keyword exists; we only keep the line's shape intact
 * (no `[`/`]`, which delimit the option block).
 */
export function checkCrtListOption(option: unknown): string {
  const s = String(option);
  const words = s.split(' ');
  const ok =
    typeof option === 'string' &&
    s.length <= MAX_ARG &&
    words.length <= 2 &&
    OPTION_KEYWORD.test(words[0]!) &&
    (words.length === 1 || OPTION_VALUE.test(words[1]!));
  if (!ok) {
    throw new InvalidNameError(
      `crt-list option ${show(s)} refused before sending to HAProxy: write "keyword" or "keyword value", ` +
        'e.g. "alpn h2,http/1.1" or "ssl-min-ver TLSv1.2"; one space, no brackets, quotes, ; or #',
    );
  }
  return s;
}

/** An SNI filter of a crt-list line: a DNS name, `*.` wildcard allowed, `!` excludes. */
export function checkSniFilter(filter: unknown): string {
  const s = String(filter);
  const negated = s.startsWith('!');
  try {
    return (negated ? '!' : '') + validateName(negated ? s.slice(1) : s, { wildcard: true });
  } catch (err) {
    throw new InvalidNameError(`crt-list SNI filter ${show(s)} refused: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Makes PEM text safe as a runtime payload: CRLF → LF, blank lines removed (an empty line ends the
 * payload; anything after it would run as commands), one trailing newline. Refuses text that is
 * not PEM-shaped, so a caller's mistake can't smuggle command lines into the payload either.
 */
export function sanitizePem(pem: unknown, what = 'PEM'): string {
  if (typeof pem !== 'string') throw new InvalidPemError(`${what} must be text`);
  const lines = pem
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l !== '');
  // eslint-disable-next-line no-control-regex
  if (lines.some((l) => /[^\x20-\x7e]/.test(l))) {
    throw new InvalidPemError(`${what} has control or non-ASCII characters; give plain PEM text`);
  }
  // Text around blocks (openssl's "Bag Attributes", comments) means nothing to HAProxy: drop it.
  const body: string[] = [];
  let inBlock = false;
  for (const l of lines) {
    if (l.startsWith('-----BEGIN ')) inBlock = true;
    if (inBlock) body.push(l);
    if (l.startsWith('-----END ')) inBlock = false;
  }
  if (body.length === 0 || inBlock) throw new InvalidPemError(`${what} has no complete -----BEGIN … -----END block`);
  return `${body.join('\n')}\n`;
}

function show(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}
