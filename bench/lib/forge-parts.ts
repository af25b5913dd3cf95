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
 */
import { certDirLayout } from '../../src/haproxy/cert-dir.js';
import { eventually } from '../../test/helpers/stack.js';
import { startBareForge } from './bare-forge.js';
import { HandshakeClient } from './handshake-client.js';
import { loadAverage } from './machine.js';
import { StackProcess } from './stack-process.js';
import { median, ms } from './stats.js';

const N = Number(process.argv[2] ?? 60);
const client = await HandshakeClient.start();
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
  const targets = [
    { name: 'bare', port: bare.tlsPort, ca: await local.rootPem() },
    { name: 'hop', port: hop.tlsPort, ca: await local.rootPem() },
    { name: 'noop', port: noop.tlsPort, ca: await local.rootPem() },
    { name: 'local', port: local.tlsPort, ca: await local.rootPem() },
    { name: 'sync', port: sync.tlsPort, ca: await sync.rootPem() },
    { name: 'ask', port: ask.tlsPort, ca: await ask.rootPem() },
  ];
  for (const t of targets) await eventually(async () => (await client.timed(t.port, 'warm.od.bench', { ca: t.ca })).served.authorized, 15_000, `${t.name} warm-up`);
  const times: Record<string, number[]> = { bare: [], hop: [], noop: [], local: [], sync: [], ask: [] };
  let failed = 0;
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < targets.length; j++) {
      const t = targets[(i + j) % targets.length]!;
      const { ms: took, served } = await client.timed(t.port, `p${i}.od.bench`, { ca: t.ca, timeoutMs: 15_000 });
      if (served.authorized) times[t.name]!.push(took);
      else failed++;
    }
  }
  const p50 = (k: string) => median(times[k]!);
  console.log(`forge parts, ${N} new names each, load ${loadAverage()}, ${failed} not forged`);
  for (const k of Object.keys(times)) console.log(`  ${k}: p50 ${ms(p50(k))} (n=${times[k]!.length})`);
  console.log(`  the SNI hop (hop − bare): ${ms(p50('hop') - p50('bare'))}`);
  console.log(`  entering Lua, a no-op action (noop − hop): ${ms(p50('noop') - p50('hop'))}`);
  console.log(`  the local decision past that, and the issuance behind (local − noop): ${ms(p50('local') - p50('noop'))}`);
  console.log(`  Lua → daemon call + decision (sync − local): ${ms(p50('sync') - p50('local'))}`);
  console.log(`  the ask request (ask − sync): ${ms(p50('ask') - p50('sync'))}`);
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
}
