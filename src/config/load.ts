import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../core/errors.js';
import type { Env } from './env.js';
import { configErrorMap, issuesToProblems, type Locator } from './issues.js';
import { ConfigValidationError } from './problems.js';
import { configSchema, type Config } from './schema.js';
import { readYamlSource } from './source.js';

export type {
  AcmeIssuerSpec,
  ApiSpec,
  CertificateSpec,
  Config,
  ConfigInput,
  DirectorySourceSpec,
  HaproxyInstanceSpec,
  HaproxySpec,
  HttpSourceSpec,
  IssuerSpec,
  LocalCaIssuerSpec,
  OnDemandSpec,
  SourceSpec,
  StoreSpec,
  TlsOptions,
} from './schema.js';
export type { Env } from './env.js';
export { ConfigValidationError, type ConfigProblem } from './problems.js';

/**
 * Reads, substitutes `${VAR}`, parses and validates a YAML config file. Relative paths in it
 * resolve against the file's directory. Throws ConfigError when the file cannot be read and
 * ConfigValidationError (a ConfigError listing every problem with file:line:col and key path)
 * when it is invalid. Safe to call concurrently.
 */
export async function loadConfig(path: string, env: Env = process.env): Promise<Config> {
  const absolute = resolve(path);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (err) {
    throw readError(path, absolute, err);
  }
  return parseConfigText(text, { file: path, baseDir: dirname(absolute), env });
}

export interface ParseConfigOptions {
  /** Shown in messages as the operator named it, e.g. `certd.yaml`. */
  file: string;
  /** Where relative paths resolve: the config file's directory. */
  baseDir: string;
  env?: Env;
}

/** loadConfig without the file read: YAML text in, validated Config out. Pure apart from `env`. */
export function parseConfigText(text: string, opts: ParseConfigOptions): Config {
  const source = readYamlSource(text, opts.file, opts.env ?? process.env);
  if (source.problems.length > 0) throw new ConfigValidationError(source.problems);
  if (source.value === null || source.value === undefined) {
    throw new ConfigValidationError([
      { file: opts.file, line: 1, col: 1, path: '', message: 'the config is empty: it needs at least haproxy: { certDir: … }' },
    ]);
  }
  return validate(source.value, resolve(opts.baseDir), source.locate, opts.file);
}

/**
 * Validates a config built in code (the demo builds its own). Takes the same shape as the YAML
 * file, with no `${VAR}` substitution; relative paths resolve against baseDir. Throws
 * ConfigValidationError listing every problem by key path. Pure; safe to call concurrently.
 */
export function configFromObject(obj: unknown, baseDir: string): Config {
  return validate(obj, resolve(baseDir));
}

function validate(value: unknown, baseDir: string, locate?: Locator, file?: string): Config {
  const result = configSchema(baseDir).safeParse(value, { error: configErrorMap });
  if (!result.success) throw new ConfigValidationError(issuesToProblems(result.error.issues, locate, file));
  return result.data;
}

function readError(path: string, absolute: string, err: unknown): ConfigError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const where = path === absolute ? path : `${path} (${absolute})`;
  switch (code) {
    case 'ENOENT':
      return new ConfigError(`config file ${where} not found: create it, or pass --config FILE`, { cause: err });
    case 'EISDIR':
      return new ConfigError(`config file ${where} is a directory: pass the YAML file itself`, { cause: err });
    case 'EACCES':
    case 'EPERM':
      return new ConfigError(`config file ${where} cannot be read (permission denied): check its owner and mode`, { cause: err });
    default:
      return new ConfigError(`config file ${where} cannot be read: ${(err as Error | undefined)?.message ?? String(err)}`, {
        cause: err,
      });
  }
}
