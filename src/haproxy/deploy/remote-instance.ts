import { CertdError } from '../../core/errors.js';
import { DEFAULT_CERT_ID, type CertEntry } from './entry.js';
import type { InstanceStatus, WorkKey } from './instance.js';

/** The version of one unit of work as an instance serves it: a certificate's serial, a map key's value ('' when absent). */
export type WorkVersions = ReadonlyArray<readonly [WorkKey, string]>;

/** What a deploy target is to the Deployer: an instance this process writes to, or one another replica owns. */
export interface DeployTarget {
  readonly name: string;
  readonly runtime?: string;
  start(): void;
  stop(): Promise<void>;
  sync(ids: Iterable<WorkKey>, waitFor?: Iterable<WorkKey>): Promise<void>;
  requestReconcile(): void;
  serves(id: string): boolean;
  status(): InstanceStatus;
}

interface Waiter {
  keys: WorkKey[];
  resolve: (err?: Error) => void;
}

/**
 * An instance another replica owns (active-active on a shared store): this process sends it
 * nothing. A caller waiting for a change is answered when the owner says it serves that version
 * (`noteServed`, from the owner's announcement), which is how a replica that owns no instance
 * answers a handshake only once HAProxy has the certificate. known.map keys are the owner's own
 * (derived from the certificates it pushes): never waited for here.
 */
export class RemoteInstance implements DeployTarget {
  /** Versions the owner announced, by work key (kept until a newer one: a late waiter finds it). */
  private readonly served = new Map<WorkKey, string>();
  /**
   * Keys last announced absent ('') and not desired here either, oldest first: removed certificates
   * and spent HTTP-01 tokens. Kept for a late waiter, but only the newest ABSENT_KEPT of them, so
   * churn (a token per order) cannot grow `served` without bound.
   */
  private readonly absent = new Set<WorkKey>();
  private waiters: Waiter[] = [];
  private owner?: string;
  private stopped = false;

  constructor(
    readonly name: string,
    readonly runtime: string | undefined,
    private readonly desired: ReadonlyMap<string, CertEntry>,
    private readonly desiredMaps: ReadonlyMap<string, ReadonlyMap<string, string>>,
    private readonly knownMap: string,
  ) {}

  start(): void {}

  requestReconcile(): void {}

  /** Waiters still here are handed to whoever writes to the instance from now on (this process took it over). */
  async handOver(to: DeployTarget): Promise<void> {
    this.stopped = true;
    for (const w of this.waiters.splice(0)) to.sync(w.keys).then(() => w.resolve(), (err: Error) => w.resolve(err));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const w of this.waiters.splice(0)) w.resolve(new CertdError('CERTD_E_STOPPED', `instance ${this.name}: daemon stopping`, { category: 'unavailable' }));
  }

  sync(ids: Iterable<WorkKey>, waitFor?: Iterable<WorkKey>): Promise<void> {
    const keys = [...(waitFor ?? ids)].filter((k) => !k.startsWith(`m:${this.knownMap}\n`));
    if (this.stopped) return Promise.reject(new CertdError('CERTD_E_STOPPED', `instance ${this.name}: daemon stopping`, { category: 'unavailable' }));
    if (keys.every((k) => this.isServed(k))) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ keys, resolve: (err) => (err ? reject(err) : resolve()) }));
  }

  /** The owner (replica id) says the instance serves these versions now. */
  noteServed(owner: string, versions: WorkVersions): void {
    this.owner = owner;
    for (const [key, version] of versions) this.note(key, version);
    this.waiters = this.waiters.filter((w) => {
      if (!w.keys.every((k) => this.isServed(k))) return true;
      w.resolve();
      return false;
    });
  }

  /**
   * As far as this replica knows: served unless a change of it waits for the owner here. The
   * owner's own status is the authority (it compares with the instance).
   */
  serves(id: string): boolean {
    const key: WorkKey = `c:${id}`;
    return this.desired.has(id) && !this.waiters.some((w) => w.keys.includes(key) && !this.isServed(key));
  }

  status(): InstanceStatus {
    const waiting = new Set(this.waiters.flatMap((w) => w.keys.filter((k) => k.startsWith('c:') && !this.isServed(k))));
    const total = this.desired.size - (this.desired.has(DEFAULT_CERT_ID) ? 1 : 0);
    return { name: this.name, runtime: this.runtime, state: 'remote', owner: this.owner, inSync: total - waiting.size, missing: 0, stale: waiting.size, pending: waiting.size };
  }

  private note(key: WorkKey, version: string): void {
    this.served.set(key, version);
    this.absent.delete(key);
    if (version !== '' || workVersion(key, this.desired, this.desiredMaps) !== '') return;
    this.absent.add(key);
    if (this.absent.size <= ABSENT_KEPT) return;
    const oldest = this.absent.values().next().value!;
    this.absent.delete(oldest);
    this.served.delete(oldest);
  }

  private isServed(key: WorkKey): boolean {
    return this.served.get(key) === workVersion(key, this.desired, this.desiredMaps);
  }
}

const ABSENT_KEPT = 10_000;

/** The version of `key` in the desired state: what an instance serving it as desired has ('' when not desired). */
export function workVersion(key: WorkKey, desired: ReadonlyMap<string, CertEntry>, desiredMaps: ReadonlyMap<string, ReadonlyMap<string, string>>): string {
  if (key.startsWith('c:')) return desired.get(key.slice(2))?.serial ?? '';
  const at = key.indexOf('\n');
  return desiredMaps.get(key.slice(2, at))?.get(key.slice(at + 1)) ?? '';
}
