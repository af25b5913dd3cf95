/**
 * Renewal storm: 100,000 ACME certificates on 45-day lifetimes, issued in four bunches, renewed
 * by the real RenewalScheduler on a simulated clock (60 days in a few seconds) against a fake CA
 * that counts new orders in a sliding 3 h window and answers 429 with Retry-After beyond 300
 * (Let's Encrypt's per-account limit); the scheduler's budget is the default 240 per 3 h. Half the
 * certificates get an ARI window from the CA (their renewals are exempt, as at Let's Encrypt);
 * another client of the account takes 150 orders twice, so 429s happen. A local CA's 1,000
 * two-day certificates renew alongside. Prints and records: orders per any 3 h window (max),
 * 429s met, renewals that came after expiry, peak concurrency per issuer, the shortfall metric,
 * and the CPU of the run per simulated day beside the old per-minute scan of every certificate.
 * Always finishes; failures are counted, not thrown.
 *
 *   npm run bench:renewal-storm        (N=100000 ARI=0.5 DAYS=60 to change)
 */
import { fileURLToPath } from 'node:url';
import { RenewalRules } from '../src/service/renewal-rules.js';
import { maxInWindow, RenewalWorld } from '../test/helpers/renewal-world.js';
import { loadAverage, machineLines } from './lib/machine.js';
import { refreshSection } from './lib/results.js';
import { num } from './lib/stats.js';
import { markdownTable, verdict } from './lib/table.js';

const N = Number(process.env.N ?? 100_000);
const ARI = Number(process.env.ARI ?? 0.5);
const DAYS = Number(process.env.DAYS ?? 60);
const LOCAL = Number(process.env.LOCAL ?? 1_000);
const H = 3_600_000;
const DAY = 24 * H;
const LIFE = 45 * DAY;
const OUR_LIMIT = 240;
const CA_LIMIT = 300;
const T0 = Date.UTC(2026, 0, 1);
/** Issued days before the start: four bunches of N/4. */
const BUNCHES = [-20, -15, -8, 0];
const RESULTS = fileURLToPath(new URL('./RESULTS.md', import.meta.url));

interface Outcome {
  ordersMax3h: number;
  caMax3h: number;
  rateLimited: number;
  counted: number;
  exempt: number;
  local: number;
  localWhileAcmeWaited: number;
  hoursAcmeWaited: number;
  missed: number;
  expiredAtEnd: number;
  peak: Map<string, number>;
  maxShortfall: number;
  maxPerDay: number;
  meanPerDay: number;
  cpuMsPerDay: number;
  wallMs: number;
}

async function storm(): Promise<Outcome> {
  const ariFor = (id: string) => ARI > 0 && (Number(id.slice(1, id.indexOf('.'))) % 1000) / 1000 < ARI;
  const world = new RenewalWorld({
    start: T0,
    cas: [
      {
        id: 'le',
        lifetimeMs: LIFE,
        issueMs: 30_000,
        limit: { orders: CA_LIMIT, perMs: 3 * H },
        // Let's Encrypt-like: a window around two thirds of the lifetime, asked again every 6 h.
        ari: (m) => (ariFor(m.id) ? { start: Date.parse(m.notBefore) + 0.6 * LIFE, end: Date.parse(m.notBefore) + 0.667 * LIFE } : undefined),
        ariRetryAfterMs: 6 * H,
      },
      { id: 'local', lifetimeMs: 2 * DAY, issueMs: 50 },
    ],
    orderLimits: new Map([['le', { orders: OUR_LIMIT, perMs: 3 * H, ariExempt: true }]]),
  });
  for (let i = 0; i < N; i++) world.add(`a${i}.storm.test`, 'le', T0 + BUNCHES[i % BUNCHES.length]! * DAY + (i % 3_600) * 1_000);
  for (let i = 0; i < LOCAL; i++) world.add(`l${i}.storm.test`, 'local', T0 - (i % 48) * H);
  const cpu = process.cpuUsage();
  const wall = performance.now();
  world.scheduler.start();
  let localWhileAcmeWaited = 0;
  let hoursAcmeWaited = 0;
  for (let hour = 1; hour <= DAYS * 24; hour++) {
    if (hour === 8 * 24 || hour === 20 * 24) world.cas.get('le')!.consume(150);
    const lane = world.scheduler.laneStats().get('le');
    const waited = lane !== undefined && (lane.waiting > 0 || lane.pausedUntil > world.clock.now());
    const localBefore = world.cas.get('local')!.issued;
    await world.clock.run(T0 + hour * H);
    if (waited) {
      hoursAcmeWaited++;
      localWhileAcmeWaited += world.cas.get('local')!.issued - localBefore;
    }
    if (hour % (5 * 24) === 0) {
      const le = world.cas.get('le')!;
      console.error(`day ${hour / 24}: ${le.issued} ACME renewals (${le.rateLimited} 429s), waiting ${lane?.waiting ?? 0}; ${num((performance.now() - wall) / 1000, 1)} s`);
    }
  }
  const used = process.cpuUsage(cpu);
  const wallMs = performance.now() - wall;
  await world.stop();
  const le = world.cas.get('le')!;
  const perDay = new Map<number, number>();
  for (const r of world.renewed) if (r.issuer === 'le') perDay.set(Math.floor((r.at - T0) / DAY), (perDay.get(Math.floor((r.at - T0) / DAY)) ?? 0) + 1);
  const days = [...perDay.values()];
  return {
    ordersMax3h: maxInWindow(le.counted, 3 * H),
    caMax3h: CA_LIMIT,
    rateLimited: le.rateLimited,
    counted: le.counted.length,
    exempt: le.exempt.length,
    local: world.cas.get('local')!.issued,
    localWhileAcmeWaited,
    hoursAcmeWaited,
    missed: world.missed,
    expiredAtEnd: world.expired(),
    peak: new Map([...world.cas].map(([id, ca]) => [id, ca.peakRunning])),
    maxShortfall: Math.max(0, ...world.shortfalls.filter((s) => s.issuer === 'le').map((s) => s.count)),
    maxPerDay: Math.max(...days),
    meanPerDay: days.reduce((a, b) => a + b, 0) / DAYS,
    cpuMsPerDay: (used.user + used.system) / 1000 / DAYS,
    wallMs,
  };
}

/** What the old scheduler did every minute at least: plan every certificate (here from memory, no store reads). */
function oldScanMsPerDay(): number {
  const rules = new RenewalRules({ issuerIds: ['le'] });
  const metas = Array.from({ length: N + LOCAL }, (_, i) => ({
    id: `a${i}.storm.test`,
    issuer: 'le',
    origin: 'api' as const,
    notBefore: new Date(T0).toISOString(),
    notAfter: new Date(T0 + LIFE).toISOString(),
    fingerprint: `f${i}`,
  }));
  const plans = new Map(metas.map((m) => [m.id, { fingerprint: m.fingerprint, dueAt: rules.dueAt(m, 0.5), nextTryAt: 0 }]));
  const passes = 20;
  const cpu = process.cpuUsage();
  let due = 0;
  for (let p = 0; p < passes; p++) {
    const list = [...metas].filter((m) => rules.renewable(m));
    for (const m of list) {
      const plan = plans.get(m.id)!;
      if (plan.fingerprint === m.fingerprint && Math.max(plan.dueAt, plan.nextTryAt) <= T0) due++;
    }
  }
  const used = process.cpuUsage(cpu);
  if (due < 0) console.log(due);
  return ((used.user + used.system) / 1000 / passes) * 1_440;
}

const load = loadAverage();
const o = await storm();
const oldMs = oldScanMsPerDay();
const shortfallNote = o.maxShortfall > 0 ? `${num(o.maxShortfall)} at most` : '0 (never reported)';
const none = (n: number) => (n === 0 ? '**met**' : '**missed**');
const rows = [
  ['our new orders in any 3 h window (max)', `${num(o.ordersMax3h)} (limit ${OUR_LIMIT})`, verdict(o.ordersMax3h, OUR_LIMIT)],
  ['429s from the CA (another client took 2 × 150 orders)', num(o.rateLimited), 'paused only `le`'],
  ['ACME renewals: counted orders / ARI-exempt', `${num(o.counted)} / ${num(o.exempt)}`, ''],
  ['ACME renewals per day: max / mean', `${num(o.maxPerDay)} / ${num(o.meanPerDay)}`, ''],
  ['renewals that came after expiry', num(o.missed), none(o.missed)],
  ['certificates expired at the end', num(o.expiredAtEnd), none(o.expiredAtEnd)],
  ['peak renewals at once: le / local', `${o.peak.get('le')} / ${o.peak.get('local')}`, verdict(Math.max(...o.peak.values()), 4)],
  ['local CA renewals / while `le` waited (hours)', `${num(o.local)} / ${num(o.localWhileAcmeWaited)} (${num(o.hoursAcmeWaited)} h)`, ''],
  ['budget shortfall (certd_renewal_budget_shortfall)', shortfallNote, ''],
  ['CPU per simulated day: this scheduler (whole simulation)', `${num(o.cpuMsPerDay, 1)} ms`, ''],
  ['CPU per day: the old per-minute plan of every certificate (in memory, no store reads)', `${num(oldMs)} ms`, `${num(oldMs / o.cpuMsPerDay, 1)}× more`],
  ['wall time of the simulation', `${num(o.wallMs / 1000, 1)} s`, ''],
];
const table = markdownTable(['measure', 'value', 'goal'], rows);
console.log(table);
const generated = [
  `## Renewal storm: ${num(N)} ACME certificates, 45-day lifetimes, a 300/3 h CA (\`npm run bench:renewal-storm\`, ${new Date().toISOString().slice(0, 10)})`,
  '',
  `\`N=${N} ARI=${ARI} DAYS=${DAYS} LOCAL=${LOCAL} npm run bench:renewal-storm\` — the real RenewalScheduler on a simulated clock (${DAYS} days), a fake CA`,
  `(sliding 300 new orders per 3 h, 429 + Retry-After, ${ARI * 100} % of certificates with an ARI window whose renewals it exempts, 30 s per order),`,
  `issued in four bunches (days ${BUNCHES.join(', ')}); budget \`rateLimit: { orders: ${OUR_LIMIT}, per: 3h }\`; ${num(LOCAL)} local-CA certificates of 2 days beside it.`,
  `Load average at the start: ${load}.`,
  '',
  table,
  '',
  ...machineLines(),
].join('\n');
await refreshSection(RESULTS, 'renewal-storm', 'Benchmark results', generated);
console.log(`\nwrote its section of ${RESULTS}`);
