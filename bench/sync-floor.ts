/**
 * The runtime API's floor for a fresh instance's full sync (issue #14 item 3), beside HAProxy's own
 * cold start from the same files, in one run: N leaves from the local CA written as the deployer
 * writes them (PEMs + crt-list), then
 *
 *  - cold start: a plain `haproxy -W` on the full crt-list, start → its worker answering;
 *  - per push strategy, a plain HAProxy on a default-only copy of the list (its start not timed),
 *    then every certificate pushed (new, abort, set, commit, add ssl crt-list each, as the deployer
 *    sends them), until the last reply; a handshake for the last name checks it is served:
 *      - `one by one`: each command a round trip (what a naive client does);
 *      - `chunks of 32`: RuntimeClient.putNewCertsAndListEntries, 32 certificates per call (the
 *        deployer's catch-up before this change);
 *      - `stream`: every command written on one raw session with at most WINDOW certificates'
 *        commands unanswered (nothing but HAProxy in the way: the floor);
 *      - `two sessions`: the stream split over two sessions at once (does a second CLI session
 *        overlap the parsing, or meet "currently locked"?);
 *  - the multi-line `add ssl crt-list` payload, tried once (2.6 answers "only one line").
 * Prints ms and ratios to the cold start; HAProxy worker CPU seconds per push.
 *
 * Run: node --import tsx bench/sync-floor.ts [--n 10000] [--rounds 3] [--skip-slow]
 */
import { connect } from 'node:net';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CERT_ID, crtListLine, crtListLineParts, makeDeployEntry, type DeployEntry } from '../src/haproxy/deploy/entry.js';
import { DeployFiles } from '../src/haproxy/deploy/files.js';
import { RuntimeClient } from '../src/haproxy/runtime/client.js';
import { handshake } from '../test/helpers/tls.js';
import { startPlainHaproxy, type PlainHaproxy } from './lib/instance.js';
import { makeLeaves } from './lib/leaves.js';
import { loadAverage } from './lib/machine.js';
import { ms, num, ratio } from './lib/stats.js';

const nArg = process.argv[process.argv.indexOf('--n') + 1];
const N = process.argv.includes('--n') && nArg ? Number(nArg) : 1_000;
const WINDOW = 64;
const roundsArg = process.argv[process.argv.indexOf('--rounds') + 1];
/** Rounds over the strategies, each round in the reverse order of the one before (a noisy machine drifts). */
const ROUNDS = process.argv.includes('--rounds') && roundsArg ? Number(roundsArg) : 1;
/** `--skip-slow`: leave out one by one and the two-session stream. */
const SKIP_SLOW = process.argv.includes('--skip-slow');
const START_MS = 600_000;

async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).replace(/^.*\) /s, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The first unexpected reply a raw stream met (for the report). */
let firstBad = '';

/** The five commands of one new certificate, framed as RuntimeSession frames them. */
function framed(list: string, e: DeployEntry): string {
  const p = e.pemPath;
  const pem = e.pem.endsWith('\n') ? e.pem : `${e.pem}\n`;
  return `new ssl cert ${p}\nabort ssl cert ${p}\nset ssl cert ${p} <<\n${pem}\ncommit ssl cert ${p}\nadd ssl crt-list ${list} <<\n${crtListLine(e)}\n\n`;
}

/**
 * Streams every certificate's commands on one raw prompt session, at most WINDOW certificates
 * unanswered; resolves with the number of replies that were not the expected success.
 */
async function stream(socketPath: string, list: string, entries: readonly DeployEntry[]): Promise<number> {
  const sock = connect({ path: socketPath });
  sock.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  let buf = '';
  let prompts = 0;
  let bad = 0;
  const perCert = 5;
  const total = entries.length * perCert + 1; // + the `prompt` line's own prompt
  let sent = 0;
  return new Promise<number>((resolve, reject) => {
    const sendMore = () => {
      const answeredCerts = Math.floor(Math.max(0, prompts - 1) / perCert);
      let chunk = '';
      while (sent < entries.length && sent - answeredCerts < WINDOW) chunk += framed(list, entries[sent++]!);
      if (chunk) sock.write(chunk);
    };
    sock.on('data', (d: string) => {
      buf += d;
      for (;;) {
        const at = buf.indexOf('\n> ');
        if (at < 0) break;
        const reply = buf.slice(0, at);
        buf = buf.slice(at + 3);
        prompts++;
        const k = (prompts - 2) % perCert;
        if (prompts > 1 && k !== 1 && !/(New empty|Transaction created|Success!)/.test(reply)) {
          if (bad++ === 0) firstBad = reply.replace(/\s+/g, ' ').slice(0, 100);
        }
      }
      if (prompts >= total) {
        sock.destroy();
        resolve(bad);
        return;
      }
      sendMore();
    });
    sock.on('error', reject);
    sock.write('prompt\n');
    sendMore();
  });
}

interface Strategy {
  name: string;
  push(h: PlainHaproxy, list: string, entries: DeployEntry[]): Promise<number>;
}

const socketOf = (h: PlainHaproxy) => h.runtime.replace(/^unix:/, '');

const STRATEGIES: Strategy[] = [
  {
    name: 'one by one (5 round trips a certificate)',
    async push(h, list, entries) {
      const c = new RuntimeClient(h.runtime);
      try {
        for (const e of entries) await c.putCertAndListEntry(list, crtListLineParts(e), e.pem);
      } finally {
        c.close();
      }
      return 0;
    },
  },
  {
    name: 'chunks of 32 (putNewCertsAndListEntries)',
    async push(h, list, entries) {
      const c = new RuntimeClient(h.runtime);
      let bad = 0;
      try {
        for (let i = 0; i < entries.length; i += 32) {
          const out = await c.putNewCertsAndListEntries(list, entries.slice(i, i + 32).map((e) => ({ entry: crtListLineParts(e), pem: e.pem })));
          bad += out.filter(Boolean).length;
        }
      } finally {
        c.close();
      }
      return bad;
    },
  },
  {
    name: 'pipelined batches of 32, two in flight (putNewCertsPipelined, the deployer now)',
    async push(h, list, entries) {
      const c = new RuntimeClient(h.runtime);
      let bad = 0;
      let at = 0;
      try {
        await c.putNewCertsPipelined(list, async () => {
          if (at >= entries.length) return undefined;
          const batch = entries.slice(at, (at += 32));
          return { items: batch.map((e) => ({ entry: crtListLineParts(e), pem: e.pem })), settle: (out) => void (bad += out.filter(Boolean).length) };
        });
      } finally {
        c.close();
      }
      return bad;
    },
  },
  { name: `stream, window ${WINDOW} certificates (raw session)`, push: (h, list, entries) => stream(socketOf(h), list, entries) },
  {
    name: 'stream on two sessions at once',
    async push(h, list, entries) {
      const half = Math.ceil(entries.length / 2);
      const bad = await Promise.all([stream(socketOf(h), list, entries.slice(0, half)), stream(socketOf(h), list, entries.slice(half))]);
      return bad[0]! + bad[1]!;
    },
  },
];

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'certd-sync-floor-'));
  try {
    const certDir = join(dir, 'certs');
    const fullList = join(certDir, 'crt-list.txt');
    const files = new DeployFiles(certDir, fullList);
    await files.prepare();
    console.log(`# N=${num(N)}: issuing leaves (load ${loadAverage()})`);
    const leaves = await makeLeaves(N + 1, 'f');
    const def = makeDeployEntry(certDir, { id: DEFAULT_CERT_ID, bundle: leaves[0]!.bundle, sni: [] });
    const entries = leaves.slice(1).map((l) => makeDeployEntry(certDir, { id: l.name, bundle: l.bundle, sni: [l.name] }));
    await files.writeEntries([def, ...entries]);
    await files.writeCrtList([def, ...entries]);

    const t0 = performance.now();
    const cold = await startPlainHaproxy(fullList, { startTimeoutMs: START_MS });
    const coldMs = performance.now() - t0;
    await cold.stop();
    console.log(`# cold start from the files: ${ms(coldMs)} (load ${loadAverage()})`);

    const rows: string[] = [];
    const chosen = STRATEGIES.filter((s) => !SKIP_SLOW || !/one by one|two sessions/.test(s.name));
    const order = Array.from({ length: ROUNDS }, (_, r) => (r % 2 === 0 ? chosen : [...chosen].reverse())).flat();
    for (const s of order) {
      const sub = join(dir, `list-${rows.length}`);
      await mkdir(sub);
      const list = join(sub, 'crt-list.txt');
      await writeFile(list, `${crtListLine(def)}\n`);
      const h = await startPlainHaproxy(list, { startTimeoutMs: START_MS });
      try {
        const worker = await h.haproxy.workerPid();
        const cpu0 = await cpuSeconds(worker);
        const t1 = performance.now();
        firstBad = '';
        const bad = await s.push(h, list, entries);
        const pushMs = performance.now() - t1;
        const cpu = (await cpuSeconds(worker)) - cpu0;
        const last = entries[entries.length - 1]!;
        const served = await handshake(h.tlsPort, last.id, { timeoutMs: 5_000 }).catch(() => undefined);
        const ok = served?.subject?.includes(last.id) ?? served !== undefined;
        const line = `${s.name}: ${ms(pushMs)} = ${ratio(pushMs / coldMs)} the cold start; worker CPU ${num(cpu, 2)} s; ${bad} unexpected replies${firstBad ? ` (first: ${JSON.stringify(firstBad)})` : ''}; last name served: ${ok}`;
        console.log(`# ${line} (load ${loadAverage()})`);
        rows.push(line);
      } finally {
        await h.stop();
      }
    }
    // 2.6's add ssl crt-list takes one line of payload: try two.
    {
      const sub = join(dir, 'multi');
      await mkdir(sub);
      const list = join(sub, 'crt-list.txt');
      await writeFile(list, `${crtListLine(def)}\n`);
      const h = await startPlainHaproxy(list, { startTimeoutMs: START_MS });
      try {
        const c = new RuntimeClient(h.runtime);
        for (const e of entries.slice(0, 2)) await c.putCert(e.pemPath, e.pem);
        c.close();
        const s = await import('../src/haproxy/runtime/session.js');
        const { parseRuntimeAddress } = await import('../src/haproxy/runtime/address.js');
        const sess = await s.RuntimeSession.open(parseRuntimeAddress(h.runtime));
        const reply = await sess.execute(`add ssl crt-list ${list}`, entries.slice(0, 2).map(crtListLine).join('\n'));
        sess.destroy();
        rows.push(`multi-line add ssl crt-list payload: ${JSON.stringify(reply.slice(0, 120))}`);
        console.log(`# ${rows[rows.length - 1]}`);
      } finally {
        await h.stop();
      }
    }
    console.log(`\nN = ${num(N)}, cold start ${ms(coldMs)}\n${rows.map((r) => `- ${r}`).join('\n')}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
