import { isDeepStrictEqual } from 'node:util';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { errorCode } from '../core/errors.js';
import { Daemon, type DaemonOptions } from './daemon.js';
import { SerialQueue } from '../core/async.js';

export type ReloadOutcome = 'reloaded' | 'unchanged' | 'refused';

/**
 * The daemon behind a config file that is read again on demand (SIGHUP, systemd's ExecReload).
 * A file that does not load or validate is refused with every problem logged, and the running
 * daemon goes on untouched. A valid, changed one replaces the daemon in this process: the old one
 * stops (work in flight finishes), a new one starts on the new config and reconciles every
 * instance — certificates, issuers, policies, instances and sources all come from it. HAProxy
 * serves throughout; only the API and on-demand answers pause for the stop and start.
 * Reloads run one at a time, in the order asked.
 */
export class ReloadableDaemon {
  private readonly queue = new SerialQueue();

  private constructor(
    private daemon: Daemon,
    private readonly configFile: string,
    private readonly o: DaemonOptions,
  ) {}

  static async start(configFile: string, config: Config, o: DaemonOptions): Promise<ReloadableDaemon> {
    return new ReloadableDaemon(await Daemon.start(config, o), configFile, o);
  }

  /** The daemon running now (a reload replaces it). */
  get current(): Daemon {
    return this.daemon;
  }

  /**
   * Reads the config file again. Rejects only when the new config validated but its daemon failed
   * to start (a port in use, an unreadable file): then nothing runs, and the caller must exit.
   */
  reload(): Promise<ReloadOutcome> {
    return this.queue.run(() => this.reloadNow());
  }

  /** Stops the daemon once any reload in progress is done. */
  stop(): Promise<void> {
    return this.queue.run(() => this.daemon.stop());
  }

  private async reloadNow(): Promise<ReloadOutcome> {
    const { log } = this.o;
    let config: Config;
    try {
      config = await loadConfig(this.configFile);
    } catch (err) {
      log.error({ config: this.configFile, code: errorCode(err), err: (err as Error).message }, 'config reload refused: the running config stays');
      return 'refused';
    }
    if (isDeepStrictEqual(config, this.daemon.config)) {
      log.info({ config: this.configFile }, 'config reload: unchanged, nothing to do');
      return 'unchanged';
    }
    const started = performance.now();
    await this.daemon.stop();
    this.daemon = await Daemon.start(config, this.o);
    log.info({ config: this.configFile, ms: Math.round(performance.now() - started) }, 'config reloaded');
    return 'reloaded';
  }
}
