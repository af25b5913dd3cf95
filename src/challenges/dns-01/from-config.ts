import { parseHostPort } from '../../config/fields.js';
import type { AcmeDnsSpec, DnsSolverSpec } from '../../config/schema.js';
import { ExecHookPublisher } from './exec-hook.js';
import { DnsLookup } from './lookup.js';
import type { TxtPublisher } from './publisher.js';
import { Rfc2136Client } from './rfc2136.js';
import { RoutedDns01Solver, type DnsRecordStorage, type PropagationCheck, type ZoneSolver } from './router.js';
import type { DnsEndpoint } from './transport.js';

/** TTL of the challenge records: short, so a retry's new value is not hidden by caches. */
const CHALLENGE_TTL = 60;
/** The single-solver form checks its own server, as it always did. */
const SINGLE_FORM_CHECK = { timeoutMs: 60_000, intervalMs: 500 };

export interface Dns01FromConfigOptions {
  onWarning?: (err: Error) => void;
  /** Port of NS-found servers (tests only; 53 otherwise). */
  nsPort?: number;
}

/**
 * The DNS-01 solver of an ACME issuer from its `dns:` config. The single-solver form
 * `{ rfc2136 }` keeps its old behaviour: names are used as they are (no CNAME lookups) and the
 * record is checked at that server. Throws ConfigError for options the schema cannot check.
 */
export function dns01FromConfig(issuer: string, dns: AcmeDnsSpec, store: DnsRecordStorage, opts: Dns01FromConfigOptions = {}): RoutedDns01Solver {
  if (dns.rfc2136 !== undefined) {
    const solver: ZoneSolver = {
      zones: [dns.rfc2136.zone],
      publisher: rfc2136Publisher(new Rfc2136Client(dns.rfc2136)),
      propagation: { servers: [endpoint(dns.rfc2136.server)], ...SINGLE_FORM_CHECK },
    };
    return new RoutedDns01Solver({ issuer, solvers: [solver], store, onWarning: opts.onWarning });
  }
  return new RoutedDns01Solver({
    issuer,
    solvers: (dns.solvers ?? []).map(zoneSolver),
    lookup: new DnsLookup(dns.resolver),
    store,
    nsPort: opts.nsPort,
    onWarning: opts.onWarning,
  });
}

function zoneSolver(spec: DnsSolverSpec): ZoneSolver {
  const publisher: TxtPublisher = spec.rfc2136
    ? rfc2136Publisher(new Rfc2136Client(spec.rfc2136))
    : new ExecHookPublisher({ command: spec.exec!.command, timeoutMs: spec.exec!.timeout });
  const p = spec.propagation;
  const propagation: PropagationCheck = p.enabled && { servers: p.servers?.map(endpoint), timeoutMs: p.timeout, intervalMs: p.interval };
  return { zones: spec.zones, publisher, propagation };
}

function rfc2136Publisher(client: Rfc2136Client): TxtPublisher {
  return {
    add: (r, signal) => client.addTxt(r.fqdn, r.value, CHALLENGE_TTL, signal),
    remove: (r) => client.deleteTxt(r.fqdn, r.value),
  };
}

/** The schema normalized it to host:port already. */
function endpoint(hostPort: string): DnsEndpoint {
  return parseHostPort(hostPort, 53)!;
}
