import { resolve } from 'node:path';
import { z } from 'zod';
import { formatHostPort, parseHostPort as readHostPort, tryParseHostPort, type HostPort } from '../core/host-port.js';
import { validateName, type NameRules } from '../core/names.js';

/*
 * Scalar field schemas shared by the config sections. Each one checks a value once, at load, so
 * the rest of the daemon can take it as given.
 */

/**
 * Documentation of a config key, attached with `.meta()`: docs/config.md is generated from these
 * (scripts/config-doc.ts), so a key and its description live in one place.
 */
export function doc(description: string, example?: unknown): { description: string; example?: unknown } {
  return example === undefined ? { description } : { description, example };
}

/** A file path; relative paths resolve against the config file's directory, not the cwd. */
export function pathField(baseDir: string) {
  return z
    .string()
    .min(1, 'expected a file path, got an empty string')
    .refine((p) => !p.includes('\0'), 'a path cannot contain NUL characters')
    .transform((p) => resolve(baseDir, p))
    .meta({ format: 'path' });
}

/** An http(s) URL; kept as written (a source URL may hold a `{name}` placeholder). */
export function httpUrl() {
  return z.string().superRefine((text, ctx) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: `expected an http(s) URL like https://host/path; got ${JSON.stringify(text)}` });
      return;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      ctx.addIssue({ code: 'custom', message: `expected an http: or https: URL; got ${url.protocol}` });
    }
  }).meta({ format: 'url' });
}

/**
 * The core parser with the undefined-when-unreadable shape challenges/dns-01/rfc2136.ts still
 * calls; everything else uses core/host-port.ts directly.
 */
export function parseHostPort(text: string, defaultPort?: number): HostPort | undefined {
  return tryParseHostPort(text, { defaultPort });
}

/** A `host:port` field, normalized to that form (the default port filled in). */
export function hostPortField(defaultPort?: number) {
  return z.string().transform((text, ctx) => {
    try {
      return formatHostPort(readHostPort(text, { defaultPort }));
    } catch (err) {
      ctx.issues.push({ code: 'custom', input: text, message: (err as Error).message });
      return z.NEVER;
    }
  }).meta({ format: 'host:port' });
}

/*
 * Inside `{ … }` YAML needs `"${PORT}"` quoted, which makes it a string: whole-number and
 * true/false fields therefore also take their text form.
 */
const fromDigits = (v: unknown) => (typeof v === 'string' && /^\d{1,15}$/.test(v) ? Number(v) : v);
const fromBoolText = (v: unknown) => (v === 'true' ? true : v === 'false' ? false : v);

/** A whole number of at least `min`. */
export function wholeNumber(what: string, min = 1) {
  return z.preprocess(fromDigits, z.number().int(`${what} must be a whole number`).min(min, `${what} must be at least ${min}`));
}

/** true or false. */
export function flag() {
  return z.preprocess(fromBoolText, z.boolean());
}

/** A TCP/UDP port number. */
export function portField() {
  return z.preprocess(
    fromDigits,
    z.number().int('expected a whole port number').min(1, 'a port is 1-65535').max(65535, 'a port is 1-65535'),
  );
}

/** A DNS name checked by the core name rules, normalized (lowercase, no trailing dot). */
export function dnsName(rules: NameRules = {}) {
  return z.string().transform((text, ctx) => {
    try {
      return validateName(text, rules);
    } catch (err) {
      ctx.issues.push({ code: 'custom', input: text, message: err instanceof Error ? err.message : String(err) });
      return z.NEVER;
    }
  }).meta({ format: 'dns-name' });
}

/** A list with at least one entry. */
export function nonEmptyList<T extends z.ZodType>(item: T, what: string) {
  return z.array(item).min(1, `list at least one ${what}`);
}
