import { InvalidNameError } from '../../core/errors.js';

/*
 * Checks applied right before a string becomes part of a path under the data directory. Callers
 * validate names earlier (validateName, certId); this is the second line of defense against
 * traversal, so it is strict and self-contained.
 */

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const CERT_ID = new RegExp(`^(?:_wildcard\\.)?${LABEL}(?:\\.${LABEL})*$`);
/** `<id>.json` and its temp file name must fit in NAME_MAX (255). */
const MAX_CERT_ID = 250;

/** No leading dot: `.`/`..` are impossible, and hidden names stay reserved for temp files. */
const KEY_SEGMENT = /^[a-z0-9_-][a-z0-9._-]{0,127}$/;
const MAX_KEY = 255;

function shown(input: string): string {
  return JSON.stringify(input.length > 80 ? `${input.slice(0, 80)}…` : input);
}

/** Whether `id` is a certificate id safe to use as a file name. Pure. */
export function isCertId(id: unknown): id is string {
  return typeof id === 'string' && id.length <= MAX_CERT_ID && CERT_ID.test(id);
}

/** Returns `id` if it is a safe certificate id (see certId), else throws InvalidNameError. Pure. */
export function checkCertId(id: unknown): string {
  if (isCertId(id)) return id;
  const text = typeof id === 'string' ? shown(id) : typeof id;
  throw new InvalidNameError(
    `invalid certificate id ${text}: ids are lowercase DNS names of at most ${MAX_CERT_ID} characters, ` +
      'optionally prefixed with "_wildcard." (build them with certId)',
  );
}

/**
 * Returns `key` if it is a safe blob or lock key (`local-ca/internal/root.key`): segments of
 * a-z 0-9 . _ - joined by `/`, none empty or starting with a dot, at most 255 characters.
 * Otherwise throws InvalidNameError. Pure.
 */
export function checkStoreKey(key: unknown, what = 'store key'): string {
  if (typeof key === 'string' && key.length <= MAX_KEY && key.split('/').every((s) => KEY_SEGMENT.test(s))) {
    return key;
  }
  const text = typeof key === 'string' ? shown(key) : typeof key;
  throw new InvalidNameError(
    `invalid ${what} ${text}: use segments of a-z 0-9 . _ - separated by "/", ` +
      `none empty or starting with ".", at most ${MAX_KEY} characters`,
  );
}
