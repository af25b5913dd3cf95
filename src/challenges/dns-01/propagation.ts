import { setTimeout as sleep } from 'node:timers/promises';
import { DnsPropagationError } from './errors.js';
import type { DnsLookup } from './lookup.js';
import type { DnsEndpoint, ExchangeOptions } from './transport.js';
import { queryTxtAt } from './txt-query.js';

export interface PropagationWait {
  /** Give up after this long. */
  timeoutMs: number;
  /** Between rounds of queries. */
  intervalMs: number;
  /** Bounds of each query. */
  net?: Omit<ExchangeOptions, 'signal'>;
  signal?: AbortSignal;
}

const where = (s: DnsEndpoint) => `${s.host}:${s.port}`;

/**
 * The authoritative servers of `zone`: its NS records looked up through the resolver, each
 * name's IPv4 addresses, on `port`. Throws DnsPropagationError when the zone has none (the
 * operator then lists propagation.servers or turns the check off).
 */
export async function authoritativeServers(zone: string, lookup: DnsLookup, port = 53, signal?: AbortSignal): Promise<DnsEndpoint[]> {
  const names = await lookup.ns(zone, signal);
  const addresses = (await Promise.all(names.map((n) => lookup.addresses(n, signal)))).flat();
  if (addresses.length === 0) {
    throw new DnsPropagationError(
      `the resolver ${lookup.where} knows no NS addresses for zone ${zone}: set propagation.servers, or propagation: false`,
      [],
    );
  }
  return [...new Set(addresses)].map((host) => ({ host, port }));
}

/**
 * Asks every server directly (no recursion) until each serves `value` at `fqdn`, in rounds every
 * `intervalMs`, for at most `timeoutMs` (plus the round in flight). A server that errs or times out
 * is asked again next round. Throws DnsPropagationError naming each server still lagging and what
 * it last answered; the signal's reason when aborted.
 */
export async function waitForPropagation(servers: readonly DnsEndpoint[], fqdn: string, value: string, opts: PropagationWait): Promise<void> {
  const net = opts.net ?? { timeoutMs: 1_000, attempts: 2 };
  const deadline = Date.now() + opts.timeoutMs;
  const last = new Map<DnsEndpoint, string>(servers.map((s) => [s, 'no answer yet']));
  for (;;) {
    opts.signal?.throwIfAborted();
    await Promise.all(
      [...last.keys()].map(async (server) => {
        try {
          const values = await queryTxtAt(server, fqdn, { ...net, signal: opts.signal }, 'it must answer queries for the zone from this host');
          if (values.includes(value)) last.delete(server);
          else last.set(server, values.length === 0 ? 'no TXT record' : `other TXT values (${values.length})`);
        } catch (err) {
          opts.signal?.throwIfAborted();
          last.set(server, (err as Error).message);
        }
      }),
    );
    if (last.size === 0) return;
    const left = deadline - Date.now();
    if (left <= 0) {
      const lagging = [...last.keys()].map(where);
      const detail = [...last].map(([s, why]) => `${where(s)}: ${why}`).join('; ');
      throw new DnsPropagationError(
        `the TXT record at ${fqdn} was not served by every authoritative server within ${opts.timeoutMs} ms; lagging: ${detail}. ` +
          'Check zone transfers to those servers, or raise propagation.timeout',
        lagging,
      );
    }
    await sleep(Math.min(opts.intervalMs, left), undefined, { signal: opts.signal }).catch((err: unknown) => {
      opts.signal?.throwIfAborted();
      throw err;
    });
  }
}
