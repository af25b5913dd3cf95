import type { Command } from 'commander';
import type { ReplicaView, StatusSummary, StoreHealthView } from '../../api/status-view.js';
import { EXPIRES_SOON_DAYS } from '../../core/expiry.js';
import type { InstanceStatus } from '../../haproxy/deploy/instance.js';
import { CliContext, type GlobalOptions } from '../context.js';
import { certListForStdout, table } from '../format.js';
import { emit } from '../output.js';

/** States in which an instance serves nothing new: `status` fails (exit 1) naming them. */
const FAILING: readonly InstanceStatus['state'][] = ['down', 'misconfigured'];
/**
 * Not yet reconciled (just started, just discovered): what it serves is unknown, so it is not
 * "fine" either; `status` exits 1 naming it, and a script that waits for a fresh daemon retries.
 */
const NOT_IN_SYNC_YET: readonly InstanceStatus['state'][] = ['starting'];

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description(
      `daemon, HAProxy instances (up/down, in sync), replicas and the shared store (postgres), and certificates expiring within ${EXPIRES_SOON_DAYS} days; exits 1 when the daemon, the store or any instance is down, misconfigured or still starting (not in sync yet)`,
    )
    .option('--json', 'print one JSON document on stdout: the daemon, instances, replicas, store, certificates')
    .action(async (o: { json?: boolean }) => {
      const ctx = await CliContext.load(program.opts<GlobalOptions>());
      const client = await ctx.daemon();
      if (!client) {
        process.exitCode = 1;
        return emit(o.json, { daemon: { running: false, listen: ctx.config.api.listen } }, () => `daemon: not running (no answer on ${ctx.config.api.listen})`);
      }
      const view = await client.call<StatusSummary>('GET', '/status');
      const failing = view.instances.filter((i) => FAILING.includes(i.state));
      const starting = view.instances.filter((i) => NOT_IN_SYNC_YET.includes(i.state));
      const storeDown = view.store !== undefined && !view.store.ok;
      if (failing.length > 0 || starting.length > 0 || storeDown) process.exitCode = 1;
      const names = (list: InstanceStatus[]) => list.map((i) => i.name);
      emit(o.json, { daemon: { running: true, url: client.baseUrl }, ...view, failing: names(failing), starting: names(starting) }, () =>
        [
          `daemon: running on ${client.baseUrl}\n`,
          table(
            ['INSTANCE', 'RUNTIME', 'STATE', 'PID', 'IN SYNC', 'MISSING', 'STALE', 'LAST ERROR'],
            view.instances.map((i) => [
              i.name,
              i.runtime ?? '-',
              i.state,
              String(i.pid ?? '-'),
              String(i.inSync),
              String(i.missing),
              String(i.stale),
              i.lastError ? `${i.lastError} (${i.lastErrorAt})` : '',
            ]),
            { width: process.stdout.columns, shrink: 7 },
          ),
          ...(view.store ? [`\n${storeLine(view.store)}`] : []),
          ...(view.replicas ? [`\n${replicaTable(view.replicas)}`] : []),
          `\n${view.counts.stored} certificate(s); ${view.counts.expiringSoon} expire within ${EXPIRES_SOON_DAYS} days (${view.counts.expired} expired)`,
          ...(view.certs.length > 0 ? [certListForStdout(view.certs)] : []),
          ...(view.counts.expiringSoon > view.certs.length ? [`… and ${view.counts.expiringSoon - view.certs.length} more: \`haproxy-certd list --expiring ${EXPIRES_SOON_DAYS}d\``] : []),
        ].join('\n'),
      );
      if (failing.length > 0) {
        process.stderr.write(`not serving: ${failing.map((i) => `${i.name} (${i.state}${i.lastError ? `: ${i.lastError}` : ''})`).join(', ')}\n`);
      }
      if (starting.length > 0) process.stderr.write(`not in sync yet (starting): ${names(starting).join(', ')}\n`);
      if (storeDown) process.stderr.write(`store unreachable since ${view.store!.downSince}: ${view.store!.error}\n`);
    });
}

function storeLine(s: StoreHealthView): string {
  const trip = s.roundTripMs === undefined ? '' : `; last statement ${s.roundTripMs} ms at ${s.checkedAt}`;
  const last = s.lastError && s.ok ? `; last error ${s.lastErrorAt}: ${s.lastError}` : '';
  return s.ok ? `store: ${s.type} reachable${trip}${last}` : `store: ${s.type} UNREACHABLE since ${s.downSince}: ${s.error}${trip}`;
}

function replicaTable(replicas: ReplicaView[]): string {
  return table(
    ['REPLICA', 'HOST', 'PID', 'API', 'STATE', 'UP SINCE', 'HEARTBEAT', 'OWNS (TOKEN)', 'CLUSTER WORK'],
    replicas.map((r) => [
      `${r.id}${r.self ? ' (this)' : ''}`,
      r.host,
      String(r.pid),
      r.api,
      r.state,
      r.upSince,
      `${(r.heartbeatAgeMs / 1000).toFixed(1)} s ago`,
      r.owns.map((o) => `${o.instance} (${o.token})`).join(', ') || '-',
      r.clusterWork ? `yes (${r.clusterWork})` : '-',
    ]),
    { width: process.stdout.columns, shrink: 3 },
  );
}
