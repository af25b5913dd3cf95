import { createHash } from 'node:crypto';
import type { DnsRecordEntry, Store } from '../../store/store.js';
import { followCnames } from './delegation.js';
import { DnsNoSolverError } from './errors.js';
import type { DnsLookup } from './lookup.js';
import { dnsName, isInZone } from './names.js';
import { authoritativeServers, waitForPropagation } from './propagation.js';
import type { TxtPublisher } from './publisher.js';
import type { Dns01Solver } from './solver.js';
import type { DnsEndpoint } from './transport.js';

/** Where a record is checked before the CA is told to validate; false: not at all. */
export type PropagationCheck =
  | false
  | {
      /** The servers to ask; absent: the zone's NS through the resolver. */
      servers?: DnsEndpoint[];
      timeoutMs: number;
      intervalMs: number;
    };

/** One configured solver: the zones it writes in, how, and how its records are checked. */
export interface ZoneSolver {
  zones: readonly string[];
  publisher: TxtPublisher;
  propagation: PropagationCheck;
}

export type DnsRecordStorage = Pick<Store, 'putDnsRecord' | 'deleteDnsRecord' | 'listDnsRecords'>;

export interface RoutedDns01Options {
  /** The ACME issuer's id: its records in the store are its own. */
  issuer: string;
  solvers: readonly ZoneSolver[];
  /** Follows `_acme-challenge` CNAMEs and finds NS; without it names are used as they are. */
  lookup?: DnsLookup;
  store: DnsRecordStorage;
  /** Port of NS-found servers (53; tests run theirs elsewhere). */
  nsPort?: number;
  /** Told about clean-ups that failed (the record stays in the store and is tried again). */
  onWarning?: (err: Error) => void;
}

interface Route {
  /** Where the TXT record goes: the challenge name, or the end of its CNAME chain. */
  target: string;
  zone: string;
  solver: ZoneSolver;
}

/**
 * DNS-01 across several solvers: each challenge name is followed through its CNAMEs (when a
 * resolver is set) and written at the end of the chain by the solver with the longest zone
 * containing it, then checked on every authoritative server. Every record is put in the store
 * before it is written and dropped from it once removed, so what a failed order or a crash left is
 * removed by sweep(). prepare() checks names (CNAME loops, a missing solver) before an order
 * exists. Safe to call concurrently.
 */
export class RoutedDns01Solver implements Dns01Solver {
  readonly #opts: RoutedDns01Options;
  readonly #warn: (err: Error) => void;
  /** Records presented by this process and not cleaned up yet: sweep() leaves them alone. */
  readonly #live = new Map<string, DnsRecordEntry>();
  #sweeping: Promise<void> | undefined;

  constructor(opts: RoutedDns01Options) {
    this.#opts = opts;
    this.#warn = opts.onWarning ?? ((err) => process.emitWarning(err));
  }

  /** Routes every name once, so a CNAME loop or a name no solver covers fails before the order. */
  async prepare(fqdns: readonly string[], signal?: AbortSignal): Promise<void> {
    await Promise.all(fqdns.map((fqdn) => this.#route(fqdn, signal)));
  }

  async present(fqdn: string, txtValue: string, signal?: AbortSignal): Promise<void> {
    const { target, zone, solver } = await this.#route(fqdn, signal);
    const entry: DnsRecordEntry = {
      id: recordId(this.#opts.issuer, target, txtValue),
      issuer: this.#opts.issuer,
      fqdn: target,
      value: txtValue,
      zone,
      writtenAt: new Date().toISOString(),
    };
    this.#live.set(liveKey(fqdn, txtValue), entry);
    await this.#opts.store.putDnsRecord(entry);
    await solver.publisher.add(entry, signal);
    await this.#waitPropagated(entry, solver, signal);
  }

  async cleanup(fqdn: string, txtValue: string): Promise<void> {
    const key = liveKey(fqdn, txtValue);
    const entry = this.#live.get(key);
    if (entry === undefined) return;
    try {
      await this.#remove(entry);
    } finally {
      this.#live.delete(key);
    }
  }

  /**
   * Removes every record of this issuer left in the store (a failed clean-up, a crash) except those
   * of orders in flight here. A failure is reported to onWarning and the record kept for the next
   * sweep. Single-flight.
   */
  sweep(): Promise<void> {
    this.#sweeping ??= this.#sweepOnce().finally(() => {
      this.#sweeping = undefined;
    });
    return this.#sweeping;
  }

  async #sweepOnce(): Promise<void> {
    const live = new Set([...this.#live.values()].map((e) => e.id));
    const left = (await this.#opts.store.listDnsRecords()).filter((r) => r.issuer === this.#opts.issuer && !live.has(r.id));
    for (const entry of left) {
      await this.#remove(entry).catch((err: unknown) => {
        this.#warn(new Error(`DNS record ${entry.fqdn} (issuer "${entry.issuer}") not removed yet, tried again later: ${(err as Error).message}`, { cause: err }));
      });
    }
  }

  async #remove(entry: DnsRecordEntry): Promise<void> {
    const solver = this.#solverFor(entry.fqdn)?.solver;
    if (solver === undefined) {
      throw new DnsNoSolverError(`no dns solver covers zone ${entry.zone} any more: remove the TXT record at ${entry.fqdn} by hand`);
    }
    await solver.publisher.remove(entry);
    await this.#opts.store.deleteDnsRecord(entry.id);
  }

  async #route(fqdn: string, signal: AbortSignal | undefined): Promise<Route> {
    const name = dnsName(fqdn, 'challenge name');
    const chain = this.#opts.lookup ? await followCnames(name, this.#opts.lookup, signal) : [name];
    const target = chain.at(-1)!;
    const found = this.#solverFor(target);
    if (found === undefined) {
      const zones = this.#opts.solvers.flatMap((s) => s.zones).join(', ');
      const via = chain.length > 1 ? ` (CNAME of ${chain.slice(0, -1).join(' → ')})` : '';
      throw new DnsNoSolverError(`no dns solver's zones contain ${target}${via}; configured zones: ${zones}. Add its zone to a solver`);
    }
    return { target, ...found };
  }

  /** The solver with the longest zone containing `name`. */
  #solverFor(name: string): { zone: string; solver: ZoneSolver } | undefined {
    let best: { zone: string; solver: ZoneSolver } | undefined;
    for (const solver of this.#opts.solvers) {
      for (const zone of solver.zones) {
        if (isInZone(name, zone) && (best === undefined || zone.length > best.zone.length)) best = { zone, solver };
      }
    }
    return best;
  }

  async #waitPropagated(entry: DnsRecordEntry, solver: ZoneSolver, signal: AbortSignal | undefined): Promise<void> {
    const check = solver.propagation;
    if (check === false) return;
    let servers = check.servers;
    if (servers === undefined) {
      if (this.#opts.lookup === undefined) return;
      servers = await authoritativeServers(entry.zone, this.#opts.lookup, this.#opts.nsPort, signal);
    }
    await waitForPropagation(servers, entry.fqdn, entry.value, { timeoutMs: check.timeoutMs, intervalMs: check.intervalMs, signal });
  }
}

function recordId(issuer: string, fqdn: string, value: string): string {
  return createHash('sha256').update(`${issuer}\n${fqdn}\n${value}`).digest('hex').slice(0, 40);
}

function liveKey(fqdn: string, value: string): string {
  return `${dnsName(fqdn, 'challenge name')} ${value}`;
}
