import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../core/errors.js';
import type { Env } from './env.js';

/** Where a packaged install keeps its config (the systemd unit's ConfigurationDirectory). */
export const SYSTEM_CONFIG = '/etc/haproxy-certd/certd.yaml';

export interface LocateOptions {
  /** `--config`, when given. */
  flag?: string;
  env?: Env;
  cwd?: string;
  /** Tests point this into a temp dir. */
  systemPath?: string;
  exists?: (path: string) => boolean;
}

/**
 * The config file to load, in this order: `--config`, `CERTD_CONFIG`, `./certd.yaml`,
 * `/etc/haproxy-certd/certd.yaml`. A file named by the flag or the variable is used even if it is
 * missing (loading it then says so): a typo must not silently fall through to another config.
 * Throws ConfigError listing the places looked at when none is found.
 */
export function locateConfig(o: LocateOptions = {}): string {
  if (o.flag !== undefined) return o.flag;
  const fromEnv = (o.env ?? process.env).CERTD_CONFIG;
  if (fromEnv) return fromEnv;
  const exists = o.exists ?? existsSync;
  const local = resolve(o.cwd ?? process.cwd(), 'certd.yaml');
  const system = o.systemPath ?? SYSTEM_CONFIG;
  for (const candidate of [local, system]) if (exists(candidate)) return candidate;
  throw new ConfigError(`no config file: looked for ${local} and ${system}; pass --config FILE or set CERTD_CONFIG`);
}
