import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { haproxyBinary } from '../../src/haproxy/managed/managed-haproxy.js';
import { num } from './stats.js';

/** A peer's version line for the results header: `name: <first line of cmd output>`. */
export interface PeerVersion {
  name: string;
  version: string;
}

/** First line of a command's output (stdout, else stderr), or "unknown". Never throws. */
export function versionOf(cmd: string, args: string[]): string {
  try {
    const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
    return out.split('\n').find((l) => l.trim() !== '')?.trim() ?? 'unknown';
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return `${e.stdout ?? ''}${e.stderr ?? ''}`.split('\n').find((l) => l.trim() !== '')?.trim() ?? 'unknown';
  }
}

/** Debian package version (`dpkg-query`), or "unknown": lego reports "dev" as its own version. */
export function debianVersion(pkg: string): string {
  return versionOf('dpkg-query', ['-W', '-f', '${Version}', pkg]);
}

/** The machine lines every results section starts with: cores, HAProxy, Node, then the peers. */
export function machineLines(peers: PeerVersion[] = []): string[] {
  return [
    `- nproc: ${availableParallelism()} (${cpus()[0]?.model ?? 'unknown CPU'})`,
    `- haproxy: ${versionOf(haproxyBinary(), ['-v'])}`,
    `- node: ${process.version}`,
    ...peers.map((p) => `- ${p.name}: ${p.version}`),
  ];
}

/** The 1-minute load average: on a shared 2-core machine, the first thing to read next to the numbers. */
export function loadAverage(): string {
  return num(loadavg()[0]!, 2);
}

/** utime + stime of a process, in seconds (clock ticks of 100 Hz, as on every Linux here). */
export async function cpuSeconds(pid: number): Promise<number> {
  return statCpuSeconds(await readFile(`/proc/${pid}/stat`, 'utf8'));
}

/** The CPU seconds of every live process named `comm` (e.g. all of a private PostgreSQL's backends). */
export async function cpuSecondsOfAll(comm: string): Promise<number> {
  let total = 0;
  for (const pid of (await readdir('/proc')).filter((e) => /^\d+$/.test(e))) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) === comm) total += statCpuSeconds(stat);
  }
  return total;
}

function statCpuSeconds(stat: string): number {
  const fields = stat.replace(/^.*\) /s, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
