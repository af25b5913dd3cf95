import { Resolver } from 'node:dns/promises';
import type { Logger } from 'pino';
import { formatHostPort } from '../../core/host-port.js';
import { formatRuntimeAddress, type RuntimeAddress } from '../runtime/address.js';

export interface DnsDiscoveryOptions {
  /** A/AAAA name (e.g. Swarm's `tasks.haproxy`) or an SRV name starting with `_`. */
  dns: string;
  /** Runtime API port for A/AAAA answers (SRV records carry their own). */
  port: number;
  everyMs: number;
  /** host:port of the DNS server to ask; the system resolver when absent. */
  server?: string;
  log: Logger;
  /** Receives the whole discovered set (instance name → runtime address) after every lookup. */
  onChange: (found: ReadonlyMap<string, string>) => Promise<void>;
}

const LOOKUP_TIMEOUT_MS = 2_000;

/**
 * Finds HAProxy instances by DNS, every `everyMs`. A failed lookup keeps the last good set: a DNS
 * hiccup must not make the daemon forget (and stop updating) a healthy fleet. An answer with no
 * records is believed (the service was scaled to zero). Not safe for concurrent start/stop.
 */
export class DnsDiscovery {
  private readonly resolver = new Resolver({ timeout: LOOKUP_TIMEOUT_MS, tries: 2 });
  private timer?: NodeJS.Timeout;
  private last = '';

  constructor(private readonly o: DnsDiscoveryOptions) {
    if (o.server) this.resolver.setServers([o.server]);
  }

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.o.everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One lookup now; applies the result when it differs from the last one. */
  async refresh(): Promise<void> {
    let found: Map<string, string>;
    try {
      found = await this.lookup();
    } catch (err) {
      this.o.log.warn({ dns: this.o.dns, err: (err as Error).message }, 'discovery lookup failed; keeping the last instances');
      return;
    }
    const key = [...found].sort().join(',');
    if (key === this.last) return;
    this.last = key;
    await this.o.onChange(found);
  }

  private async lookup(): Promise<Map<string, string>> {
    const targets = this.o.dns.startsWith('_')
      ? (await this.resolver.resolveSrv(this.o.dns).catch(noRecords([]))).map((r) => ({ host: r.name, port: r.port }))
      : [{ host: this.o.dns, port: this.o.port }];
    const found = new Map<string, string>();
    for (const t of targets) {
      const [v4, v6] = await Promise.all([
        this.resolver.resolve4(t.host).catch(noRecords<string[]>([])),
        this.resolver.resolve6(t.host).catch(noRecords<string[]>([])),
      ]);
      for (const ip of [...v4, ...v6]) {
        const address: RuntimeAddress = { kind: 'tcp', host: ip, port: t.port };
        found.set(formatHostPort(address), formatRuntimeAddress(address));
      }
    }
    return found;
  }
}

/** "No such name / no records" is an answer (zero instances); anything else is a failure. */
function noRecords<T>(empty: T) {
  return (err: NodeJS.ErrnoException): T => {
    if (err.code === 'ENOTFOUND' || err.code === 'ENODATA') return empty;
    throw err;
  };
}
