import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { startStack } from '../../test/helpers/stack.js';
import type { HistogramTotals } from './metrics.js';

/**
 * A certd stack (daemon + managed HAProxy, as test/helpers/stack.ts starts it) in a Node process
 * of its own, as the daemon runs in production and as Caddy runs beside it: the bench's client
 * and `ask` endpoint do not share its event loop, libuv pool or garbage collector.
 */
export class StackProcess {
  private readonly waiting = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();
  private next = 0;
  tlsPort = 0;
  crtList = '';
  certDir = '';

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (m: { id: number; result?: unknown; error?: string }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.error === undefined) w?.resolve(m.result);
      else w?.reject(new Error(`certd stack process: ${m.error}`));
    });
    child.on('exit', (code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`certd stack process exited (${code})`));
      this.waiting.clear();
    });
  }

  static async start(config: Parameters<typeof startStack>[0]): Promise<StackProcess> {
    const prof = process.env.CERTD_BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.CERTD_BENCH_CPU_PROF] : [];
    const child = fork(new URL('./stack-child.ts', import.meta.url), { execArgv: ['--import', 'tsx', ...prof], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const proc = new StackProcess(child);
    const started = (await proc.call({ op: 'start', config })) as { tlsPort: number; crtList: string; certDir: string };
    proc.tlsPort = started.tlsPort;
    proc.crtList = started.crtList;
    proc.certDir = started.certDir;
    return proc;
  }

  /** The local CA root the daemon issues from (created by this call if none exists yet). */
  rootPem(): Promise<string> {
    return this.call({ op: 'rootPem' }) as Promise<string>;
  }

  /** The process the daemon runs in. */
  get pid(): number {
    return this.child.pid ?? 0;
  }

  workerPid(): Promise<number> {
    return this.call({ op: 'workerPid' }) as Promise<number>;
  }

  /** Sum and count of one of the daemon's histograms (see metrics.ts). */
  histogram(name: string): Promise<HistogramTotals> {
    return this.call({ op: 'histogram', name }) as Promise<HistogramTotals>;
  }

  /** Stops the daemon and HAProxy, then the process. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = once(this.child, 'exit');
    await this.call({ op: 'stop' }).catch(() => undefined);
    this.child.disconnect();
    await exited;
  }

  private call(message: object): Promise<unknown> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.child.send({ id, ...message });
    });
  }
}
