import type { Logger } from 'pino';
import { coalesced } from '../../core/coalesce.js';
import { CertdError } from '../../core/errors.js';
import { RuntimeClient } from '../runtime/client.js';
import { DEFAULT_CERT_ID, type DeployEntry } from './entry.js';
import { DeployFiles } from './files.js';
import { InstanceSync, type InstanceStatus } from './instance.js';
import { noDeployMetrics, type DeployMetrics } from './metrics.js';

export interface DeployerOptions {
  certDir: string;
  crtList: string;
  /** Runtime API addresses ("unix:/run/haproxy/admin.sock", "tcp:127.0.0.1:9999"). */
  instances: { name?: string; runtime: string }[];
  /** The fallback certificate: the crt-list's first line, served to names we do not know. */
  defaultEntry: DeployEntry;
  log: Logger;
  metrics?: DeployMetrics;
  pollMs?: number;
}

export interface DeployOutcome {
  /** Instances that serve the change now. */
  ok: string[];
  /** Instances that failed (they keep retrying in the background). */
  failed: { instance: string; error: string }[];
}

/**
 * Deploy, always in this order: write the files HAProxy reads at start (atomically), then push the
 * same state to every instance over the runtime API, concurrently across instances and serially
 * within each. Safe to call concurrently: file writes are serialized and coalesced.
 */
export class Deployer {
  private readonly desired = new Map<string, DeployEntry>();
  private readonly files: DeployFiles;
  private readonly instances: InstanceSync[];
  private readonly writeCrtList: () => Promise<void>;
  private fileQueue: Promise<unknown> = Promise.resolve();

  constructor(o: DeployerOptions) {
    this.files = new DeployFiles(o.certDir, o.crtList);
    this.desired.set(DEFAULT_CERT_ID, o.defaultEntry);
    this.writeCrtList = coalesced(() => this.files.writeCrtList(this.desired.values()));
    this.instances = o.instances.map(
      (inst, i) =>
        new InstanceSync({
          name: inst.name ?? (o.instances.length === 1 ? 'haproxy' : `haproxy-${i + 1}`),
          client: new RuntimeClient(inst.runtime),
          crtList: o.crtList,
          certDir: o.certDir,
          desired: this.desired,
          log: o.log,
          metrics: o.metrics ?? noDeployMetrics,
          pollMs: o.pollMs,
        }),
    );
  }

  /** Writes every file for the initial set, then starts one worker per instance (each reconciles). */
  async start(initial: DeployEntry[]): Promise<void> {
    await this.files.prepare();
    for (const e of initial) this.desired.set(e.id, e);
    await this.files.writeEntries([...this.desired.values()]);
    await this.writeCrtList();
    for (const inst of this.instances) inst.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.instances.map((i) => i.stop()));
  }

  /** Adds or replaces certificates everywhere; resolves when every instance answered (or failed). */
  async upsert(entries: DeployEntry[], timeoutMs = 30_000): Promise<DeployOutcome> {
    await this.serialFiles(async () => {
      await this.files.writeEntries(entries);
      for (const e of entries) this.desired.set(e.id, e);
    });
    await this.writeCrtList();
    return this.fanOut(entries.map((e) => e.id), timeoutMs);
  }

  /** Stops serving certificates everywhere and removes their files. */
  async remove(ids: string[], timeoutMs = 30_000): Promise<DeployOutcome> {
    const gone = ids.map((id) => this.desired.get(id)).filter((e): e is DeployEntry => Boolean(e) && e!.id !== DEFAULT_CERT_ID);
    for (const e of gone) this.desired.delete(e.id);
    await this.writeCrtList();
    const outcome = await this.fanOut(gone.map((e) => e.id), timeoutMs);
    // After the crt-list no longer names them, a restarting HAProxy can't need the files.
    await this.serialFiles(() => this.files.removeEntries(gone.filter((e) => !this.desired.has(e.id))));
    return outcome;
  }

  has(id: string): boolean {
    return this.desired.has(id);
  }

  /** Names of the instances that serve this certificate as desired now. */
  deployedOn(id: string): string[] {
    return this.instances.filter((i) => i.serves(id)).map((i) => i.name);
  }

  status(): InstanceStatus[] {
    return this.instances.map((i) => i.status());
  }

  private async fanOut(ids: string[], timeoutMs: number): Promise<DeployOutcome> {
    const outcome: DeployOutcome = { ok: [], failed: [] };
    await Promise.all(
      this.instances.map(async (inst) => {
        try {
          await withTimeout(inst.sync(ids), timeoutMs, `instance ${inst.name}: deploy took over ${timeoutMs} ms`);
          outcome.ok.push(inst.name);
        } catch (err) {
          outcome.failed.push({ instance: inst.name, error: err instanceof Error ? err.message : String(err) });
        }
      }),
    );
    return outcome;
  }

  private serialFiles<T>(job: () => Promise<T>): Promise<T> {
    const run = this.fileQueue.then(job, job);
    this.fileQueue = run.catch(() => undefined);
    return run;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CertdError('CERTD_E_DEPLOY_TIMEOUT', message)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
