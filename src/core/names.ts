import { isIP } from 'node:net';
import { InvalidNameError, TooManyNamesError } from './errors.js';

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const MAX_NAME = 253;
/**
 * Names per certificate, everywhere (config, API, CLI, imports, sources): Let's Encrypt's limit,
 * and what keeps one crt-list line and one `show ssl cert` reply within HAProxy's 16 KB buffer.
 */
export const MAX_NAMES_PER_CERT = 100;

/** Throws TooManyNamesError past MAX_NAMES_PER_CERT. */
export function checkNameCount(names: readonly string[], what = 'a certificate'): void {
  if (names.length > MAX_NAMES_PER_CERT) {
    throw new TooManyNamesError(`${what} has ${names.length} names; at most ${MAX_NAMES_PER_CERT} per certificate: split it into several`);
  }
}

export interface NameRules {
  /** Accept a leading `*.` label (config, imports; never on-demand SNIs). */
  wildcard?: boolean;
  /** Accept IPv4/IPv6 literals (local CA SANs). */
  ip?: boolean;
  /** Accept labels with a leading `_` (SRV names like `_haproxy._tcp.example.com`; never certificates). */
  underscore?: boolean;
}

/**
 * Validates and normalizes a certificate name. Only LDH labels, lowercase, punycode for IDNs:
 * the result is safe as a file name, in a runtime-API command and in a CA order.
 * Safe to call concurrently (pure).
 */
export function validateName(input: unknown, rules: NameRules = {}): string {
  if (typeof input !== 'string' || input.length === 0) {
    throw new InvalidNameError('name is empty: give a DNS name like www.example.com');
  }
  const shown = JSON.stringify(input.length > 80 ? `${input.slice(0, 80)}…` : input);
  if (input.length > MAX_NAME) {
    throw new InvalidNameError(`name ${shown} is ${input.length} characters; DNS names have at most ${MAX_NAME}`);
  }
  if (input.includes('%') && isIP(input) === 6) {
    throw new InvalidNameError(`name ${shown} carries an IPv6 zone id (%…), which means something on one host only: give the address without it`);
  }
  if (rules.ip && isIP(input)) return input.toLowerCase();
  const name = input.toLowerCase().replace(/\.$/, '');
  // eslint-disable-next-line no-control-regex
  if (/[^\x21-\x7e]/.test(name)) {
    throw new InvalidNameError(`name ${shown} has spaces, control or non-ASCII characters; write IDNs as punycode (xn--…)`);
  }
  const labels = name.split('.');
  const wild = labels[0] === '*';
  if (wild && !rules.wildcard) {
    throw new InvalidNameError(`name ${shown} is a wildcard; wildcards are not allowed here`);
  }
  const plain = wild ? labels.slice(1) : labels;
  if (plain.length < 1 || (wild && plain.length < 2)) {
    throw new InvalidNameError(`name ${shown} is too short for a certificate name`);
  }
  for (const label of plain) {
    if (!LABEL.test(rules.underscore && label.startsWith('_') ? label.slice(1) : label)) {
      throw new InvalidNameError(
        `name ${shown} has an invalid label ${JSON.stringify(label)}: use letters, digits and inner hyphens, 1-63 per label`,
      );
    }
  }
  return name;
}

/** Like validateName but returns undefined instead of throwing (hot paths: SNI checks). */
export function tryValidateName(input: unknown, rules: NameRules = {}): string | undefined {
  try {
    return validateName(input, rules);
  } catch {
    return undefined;
  }
}

/** A file-system and runtime-API safe identifier for a certificate, derived from its primary name. */
export function certId(primaryName: string): string {
  return primaryName.startsWith('*.') ? `_wildcard.${primaryName.slice(2)}` : primaryName;
}
