import { loadConfig } from '../config/load.js';
import { locateConfig } from '../config/locate.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import { readToken } from '../daemon/token.js';
import { apiBaseUrl } from '../daemon/haproxy-snippets.js';
import type { CertService } from '../service/cert-service.js';
import type { Store } from '../store/store.js';
import { DaemonClient } from './daemon-client.js';

export interface GlobalOptions {
  /** `--config`; else found by locateConfig. */
  config?: string;
  json?: boolean;
}

/** What a state-changing command acts through: the running daemon's API, or the store itself. */
export type Target = { kind: 'daemon'; client: DaemonClient } | { kind: 'store'; service: CertService; store: Store };

/**
 * What a command runs with. The modules only acting on the store need (the daemon's assembly, the
 * logger) are imported when first asked for: a command talking to the daemon (`list`) starts
 * without loading them (measured: `--version` 0.33–0.53 s before, see bench/RESULTS.md listing).
 */
export class CliContext {
  #log?: Logger;

  private constructor(
    readonly config: Config,
    /** The config file loaded, as given or found. */
    readonly configFile: string,
  ) {}

  static async load(opts: GlobalOptions): Promise<CliContext> {
    const configFile = locateConfig({ flag: opts.config });
    const ctx = new CliContext(await loadConfig(configFile), configFile);
    // A level given is checked now, as before (a usage error whatever the command); the default
    // needs no check, so the logger's module waits until a command logs.
    if (process.env.CERTD_LOG_LEVEL !== undefined) await ctx.logger();
    return ctx;
  }

  /** The CLI's logger (level from CERTD_LOG_LEVEL, default warn). */
  async logger(): Promise<Logger> {
    const { createLogger } = await import('../core/log.js');
    return (this.#log ??= createLogger(process.env.CERTD_LOG_LEVEL ?? 'warn'));
  }

  /** The configured store, opened. */
  async openStore(): Promise<Store> {
    const { openStore } = await import('../daemon/assembly.js');
    return openStore(this.config, await this.logger());
  }

  /** The daemon's API client when a daemon answers, else undefined. */
  async daemon(): Promise<DaemonClient | undefined> {
    const base = apiBaseUrl(this.config.api.listen);
    const token = this.config.api.token ?? (await readToken(this.config.dataDir));
    const client = new DaemonClient(base, token ?? '');
    return (await client.isUp()) ? client : undefined;
  }

  /** The running daemon if there is one, else a service acting on the store alone (no deploy). */
  async target(): Promise<Target> {
    const client = await this.daemon();
    if (client) return { kind: 'daemon', client };
    const store = await this.openStore();
    const { assemble } = await import('../daemon/assembly.js');
    const { service } = await assemble(this.config, store, { log: await this.logger() });
    return { kind: 'store', service, store };
  }
}

/** Said after a change made on the store alone. */
export const OFFLINE_NOTE = 'daemon not running: saved to the store; it is deployed when `haproxy-certd run` starts';
