/**
 * Where the forge's first handshake goes (issue #17, an experiment, not a bench with goals): the
 * same new names, back to back, on
 *  - bare: one `generate-certificates` bind (no hop, no Lua, no daemon);
 *  - hop: the same bind behind certd's SNI front and PROXY loop, no Lua;
 *  - noop: the hop with a Lua action that does nothing (entering Lua at all);
 *  - local: forge with local decisions (hop + Lua patterns + grant);
 *  - sync: forge with the synchronous call but no `ask` (perClientPerMinute forces it): hop + Lua →
 *    daemon → policy;
 *  - ask: forge with the synchronous call and an `ask` URL (as bench:ondemand's forge target).
 * Differences of p50s: hop − bare = the hop; noop − hop = entering Lua; local − noop = the local decision (and the issuance behind it); sync − local = the call and the decision;
 * ask − sync = the ask request.
 *
 * Run: nice -n 19 node --import tsx bench/lib/forge-parts.ts [names, default 60]
 *      CONC=10: each target gets the names in batches of 10 at once (targets rotating batch by batch).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { certDirLayout } from '../../src/haproxy/cert-dir.js';
import { eventually } from '../../test/helpers/stack.js';
import { startBareForge } from './bare-forge.js';
import { HandshakeClient } from './handshake-client.js';
import { loadAverage } from './machine.js';
import { StackProcess } from './stack-process.js';
import { median, ms } from './stats.js';

const N = Number(process.argv[2] ?? 60);
const CONC = Math.max(1, Number(process.env.CONC ?? 1));
const client = await HandshakeClient.start();

/** The pid listening on a loopback TCP port (the HAProxy worker that serves it). */
function listenerPid(port: number): number {
  const out = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' });
  return Number(/pid=(\d+)/.exec(out)?.[1] ?? 0);
}

/** User + system CPU of a process so far, in ms (/proc/<pid>/stat fields 14 and 15, in clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  if (!pid) return 0;
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

const base = { issuer: 'internal', allow: ['*.od.bench'], maxCertificates: 100_000, maxWait: '10s' };
const rate = { perMinute: 1_000_000, burst: 100_000 };
const stops: (() => Promise<unknown>)[] = [() => client.close()];
try {
  const mk = async (onDemand: object) => {
    const s = await StackProcess.start({ issuers: { internal: { type: 'local-ca' } }, onDemand: { ...base, forge: true, ...onDemand } });
    stops.push(() => s.stop());
    return s;
  };
  const local = await mk({ rateLimit: rate });
  const sync = await mk({ rateLimit: { ...rate, perClientPerMinute: 1_000_000 } });
  const ask = await mk({ rateLimit: rate, ask: client.askUrl });
  const layout = certDirLayout(local.certDir);
  const bare = await startBareForge({ caFile: layout.forgeCaFile, defaultCert: layout.forgeDefaultCert, cacheSize: 100_000 });
  stops.push(() => bare.stop());
  const hop = await startBareForge({ caFile: layout.forgeCaFile, defaultCert: layout.forgeDefaultCert, cacheSize: 100_000, hop: true });
  stops.push(() => hop.stop());
  const noop = await startBareForge({ caFile: layout.forgeCaFile, defaultCert: layout.forgeDefaultCert, cacheSize: 100_000, hop: true, noopLua: true });
  stops.push(() => noop.stop());
  const noopPT = await startBareForge({ caFile: layout.forgeCaFile, defaultCert: layout.forgeDefaultCert, cacheSize: 100_000, hop: true, noopLua: true, perThread: true });
  stops.push(() => noopPT.stop());
  const bare1 = await startBareForge({ caFile: layout.forgeCaFile, defaultCert: layout.forgeDefaultCert, cacheSize: 100_000, nbthread: 1 });
  stops.push(() => bare1.stop());
  const hop1 = await startBareForge({ caFile: layout.forgeCaFile, defaultCert: layout.forgeDefaultCert, cacheSize: 100_000, hop: true, nbthread: 1 });
  stops.push(() => hop1.stop());
  const targets = [
    { name: 'bare', port: bare.tlsPort, ca: await local.rootPem(), daemon: 0 },
    { name: 'hop', port: hop.tlsPort, ca: await local.rootPem() },
    { name: 'noop', port: noop.tlsPort, ca: await local.rootPem() },
    { name: 'noopPT', port: noopPT.tlsPort, ca: await local.rootPem() },
    { name: 'bare1', port: bare1.tlsPort, ca: await local.rootPem() },
    { name: 'hop1', port: hop1.tlsPort, ca: await local.rootPem() },
    { name: 'local', port: local.tlsPort, ca: await local.rootPem(), daemon: local.pid },
    { name: 'sync', port: sync.tlsPort, ca: await sync.rootPem(), daemon: sync.pid },
    { name: 'ask', port: ask.tlsPort, ca: await ask.rootPem(), daemon: ask.pid },
  ];
  const only = process.env.ONLY?.split(',');
  const chosen = only ? targets.filter((t) => only.includes(t.name)) : targets;
  for (const t of chosen) await eventually(async () => (await client.timed(t.port, 'warm.od.bench', { ca: t.ca })).served.authorized, 15_000, `${t.name} warm-up`);
  const times: Record<string, number[]> = Object.fromEntries(chosen.map((t) => [t.name, []]));
  const pids = chosen.map((t) => ({ haproxy: listenerPid(t.port), daemon: t.daemon ?? 0 }));
  const cpu0 = pids.map((p) => ({ haproxy: cpuMs(p.haproxy), daemon: cpuMs(p.daemon) }));
  let failed = 0;
  for (let i = 0; i < N; i += CONC) {
    for (let j = 0; j < chosen.length; j++) {
      const t = chosen[(i / CONC + j) % chosen.length]!;
      const batch = Array.from({ length: Math.min(CONC, N - i) }, (_, k) => `p${i + k}.od.bench`);
      await Promise.all(
        batch.map(async (name) => {
          const { ms: took, served } = await client.timed(t.port, name, { ca: t.ca, timeoutMs: 15_000 });
          if (served.authorized) times[t.name]!.push(took);
          else failed++;
        }),
      );
    }
  }
  // The issuance behind the last names (250 ms after approval) counts too.
  await new Promise((r) => setTimeout(r, 2_000));
  const cpu = chosen.map((t, i) => ({ name: t.name, haproxy: (cpuMs(pids[i]!.haproxy) - cpu0[i]!.haproxy) / N, daemon: (cpuMs(pids[i]!.daemon) - cpu0[i]!.daemon) / N }));
  const p50 = (k: string) => median(times[k]!);
  console.log(`forge parts, ${N} new names each, ${CONC} at once, load ${loadAverage()}, ${failed} not forged`);
  for (const c of cpu) console.log(`  ${c.name}: p50 ${ms(p50(c.name))} (n=${times[c.name]!.length}); CPU per name: HAProxy ${ms(c.haproxy)}, daemon ${ms(c.daemon)}`);
  if (!only) {
    console.log(`  the SNI hop (hop − bare): ${ms(p50('hop') - p50('bare'))}`);
    console.log(`  entering Lua, a no-op action (noop − hop): ${ms(p50('noop') - p50('hop'))}`);
    console.log(`  the local decision past that, and the issuance behind (local − noop): ${ms(p50('local') - p50('noop'))}`);
    console.log(`  Lua → daemon call + decision (sync − local): ${ms(p50('sync') - p50('local'))}`);
    console.log(`  the ask request (ask − sync): ${ms(p50('ask') - p50('sync'))}`);
  }
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
}
