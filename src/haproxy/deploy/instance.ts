import type { Logger } from 'pino';
import { CertdError, HaproxyCommandError, HaproxyMisconfiguredError, HaproxyNotFoundError } from '../../core/errors.js';
import type { ReloadFallback } from './reload.js';
import type { CrtListEntry, Digested, MapEntry, RuntimeClient, StoreListing } from '../runtime/client.js';
import { readFile } from 'node:fs/promises';
import { crtListLineParts, DEFAULT_CERT_ID, sameListLine, type CertEntry } from './entry.js';
import type { DeployMetrics } from './metrics.js';
import { normalizeSerialHex } from '../../crypto/der.js';
import { FORGE_DIR } from '../cert-dir.js';
import { parseRuntimeAddress } from '../runtime/address.js';
import { watchSocket } from './socket-watch.js';

/** `misconfigured`: HAProxy answers, but no bind loads our crt-list (nothing can be served). */
/** `remote`: another replica owns the instance and writes to it (active-active, see RemoteInstance). */
export type InstanceState = 'starting' | 'up' | 'down' | 'misconfigured' | 'remote';

export interface InstanceStatus {
  name: string;
  runtime?: string;
  state: InstanceState;
  /** The replica that writes to it, when that is another one (state `remote`), once it said so. */
  owner?: string;
  pid?: number;
  lastError?: string;
  lastErrorAt?: string;
  /** Certificates this instance serves as desired. */
  inSync: number;
  /** Desired certificates it does not serve at all. */
  missing: number;
  /** Desired certificates it serves in an older version or with other crt-list options. */
  stale: number;
  /** missing + stale. */
  pending: number;
  /** Runtime commands sent to this instance since the daemon started (each pipelined one counts). */
  commands?: number;
  /** Reconcile passes with the instance since the daemon started (unchanged ones included). */
  reconciles?: number;
  /** Of those, the passes that found every reply byte-identical and nothing changed on our side: not compared again. */
  reconcilesUnchanged?: number;
  /** The last pass: when, how long, its runtime commands, certificates read one by one, whether it was an unchanged one. */
  lastReconcile?: { at: string; ms: number; commands: number; certsRead: number; unchanged: boolean };
}

/** What InstanceSync uses of RuntimeClient: the seam its unit tests fill with an in-memory instance. */
export type InstanceClient = Pick<
  RuntimeClient,
  | 'showInfo'
  | 'showSslCertsSince'
  | 'showSslCertMany'
  | 'showCrtListSince'
  | 'showMapSince'
  | 'putCert'
  | 'putCertAndListEntry'
  | 'putNewCertsPipelined'
  | 'putCaFile'
  | 'addCrtListEntry'
  | 'delCrtListEntry'
  | 'delSslCert'
  | 'delSslCaFile'
  | 'addMapEntries'
  | 'setMap'
  | 'delMap'
  | 'close'
> & { readonly commandsSent?: number };

/** What InstanceSync uses of ReloadFallback. */
export type InstanceReload = Pick<ReloadFallback, 'request'>;

export interface InstanceOptions {
  name: string;
  client: InstanceClient;
  crtList: string;
  /** Only certificates under this directory are ours to add and remove. */
  certDir: string;
  desired: ReadonlyMap<string, CertEntry>;
  /** Map files (path → key → value) this instance should hold, e.g. known.map and acme.map. */
  desiredMaps: ReadonlyMap<string, ReadonlyMap<string, string>>;
  /** The map of served names (name → certificate id) that spares known names the on-demand Lua. */
  knownMap?: string;
  log: Logger;
  metrics: DeployMetrics;
  /** How often `show info` is polled to notice a restarted or reloaded HAProxy. */
  pollMs?: number;
  /** The runtime address, for status output. */
  runtime?: string;
  /** Hitless reload for changes the runtime API refuses (needs the instance's master socket). */
  reload?: InstanceReload;
  /** Resolves once the file writes started so far are done (a reload must find them). */
  filesWritten?: () => Promise<void>;
  /** The PEM (chain + key) to push for an entry (default: its `pem` if it has one, else its file). */
  pem?: (e: CertEntry) => Promise<string>;
  /** Push order hint, id → rank (lower first): most-used certificates first when catching up. */
  rank?: ReadonlyMap<string, number>;
  /** Counts every change to `desired` and `desiredMaps` (see DeployGeneration): an unchanged one lets a pass skip. */
  generation?: () => number;
}

/** What the last full comparison was made against: its replies' digests and what we expected then. */
interface ComparedAgainst {
  pid: number;
  certs: string;
  list: string;
  /** Digest per map this instance loads. */
  maps: ReadonlyMap<string, string>;
  generation: number;
  changes: number;
}

/**
 * One unit of work: `c:<cert id>` or `m:<map path>\n<key>`. Certificates sort before map keys, so a
 * name enters known.map only after its certificate is served.
 */
export type WorkKey = `c:${string}` | `m:${string}`;

export const certWork = (id: string): WorkKey => `c:${id}`;
export const mapWork = (path: string, key: string): WorkKey => `m:${path}\n${key}`;

interface Waiter {
  ids: Set<WorkKey>;
  resolve: (err?: Error) => void;
}

const BACKOFF_MIN_MS = 200;
const BACKOFF_MAX_MS = 5_000;
const STOP_GRACE_MS = 2_000;
/** `show ssl cert` prints each name as `DNS:<name>, `. */
const SAN_OVERHEAD_BYTES = 6;
/** Names printing to more than this are never asked about (see servedSha1): half a 16 KB buffer. */
const SHOW_CERT_SAFE_SAN_BYTES = 8_000;
/** How long after a fallback reload its waiters wait for the new worker's first reconcile. */
const RELOAD_SETTLE_MS = 5_000;
/** Waiters on at most this many ids are answered right after their last push (see settle). */
const EARLY_SETTLE_MAX_IDS = 16;
/**
 * Certificates new to an instance pushed in one write (new + abort + set + commit + add each),
 * two such writes in HAProxy's hands at once (a stream: see streamNew): a fresh instance is synced
 * at HAProxy's pace; a waiter arriving behind the stream waits for ~2 × PUSH_CHUNK pushes at most.
 */
const PUSH_CHUNK = 32;
/**
 * Certificates small waiters wait for (updates, handshakes), new to the instance, in HAProxy's
 * hands at once: a stream of batches of one, so each is answered right after its own push and
 * none waits for the round trip of the one before. One by one, 32 updates at once each paid a
 * round trip per command, and every arrival cut the pass short: they waited ~70 ms for the push
 * (bench/scale.ts ingest, a probe).
 */
const URGENT_IN_FLIGHT = 32;
/** While down, a caller's request starts a retry before the backoff ends at most this often. */
const DOWN_RETRY_MIN_MS = 1_000;

const pemOfEntry = (e: CertEntry): Promise<string> => ('pem' in e && typeof e.pem === 'string' ? Promise.resolve(e.pem) : readFile(e.pemPath, 'utf8'));

/**
 * Keeps one HAProxy instance serving the desired set: a single worker drains a set of dirty ids,
 * pushing adds, updates and removals over the runtime API; a restart (new worker pid) or an outage
 * triggers a full reconcile against what the instance reports. Calls are safe concurrently; work
 * for one instance is strictly serial, so the 2.6 one-transaction rule holds.
 */
export class InstanceSync {
  readonly name: string;
  readonly runtime?: string;
  private readonly o: InstanceOptions;
  /** What we know the instance serves: id → entry as pushed (replaced whole at the end of a reconcile). */
  private served = new Map<string, CertEntry>();
  /** Map contents as the instance has them; a map this HAProxy does not load is absent here. */
  private servedMaps = new Map<string, Map<string, string>>();
  /** The worker pid `served` describes (it is only vouched for while that worker runs). */
  private servedPid?: number;
  private lastReconcile?: InstanceStatus['lastReconcile'];
  private reconciles = 0;
  private reconcilesUnchanged = 0;
  /** The last full comparison's replies and expectations; undefined until one is made on this worker. */
  private compared?: ComparedAgainst;
  /** Work handed to this instance (sync calls, passes of the worker): any since a comparison makes the next one full. */
  private changes = 0;
  /** The failure that put the instance down: callers hear it at once while it stays down. */
  private downError?: Error;
  private lastAttempt = 0;
  private readonly dirty = new Set<WorkKey>();
  /** Certificates HAProxy refused at runtime (not a connection problem): retried at the next reconcile. */
  private readonly refused = new Map<string, Error>();
  /** The certificate version (SHA-1) a fallback reload was requested for, by id: one reload each. */
  private readonly reloadedFor = new Map<string, string>();
  /**
   * Certificates a fallback reload is loading, by id → until when their waiters wait for it:
   * Infinity while the reload runs, then RELOAD_SETTLE_MS more for the new worker's first
   * reconcile (its stats socket refuses connections for a moment after the switch).
   */
  private readonly reloading = new Map<string, number>();
  private waiters: Waiter[] = [];
  /** A small waiter registered while a pass was under way (see nextWork). */
  private urgentArrived = false;
  private needReconcile = true;
  private state: InstanceState = 'starting';
  private pid?: number;
  private lastError?: { message: string; at: string };
  private wake?: () => void;
  private stopped = false;
  private loop?: Promise<void>;
  private poller?: NodeJS.Timeout;
  private unwatch?: () => void;
  /** A `show info` of checkRestart is under way. */
  private checking = false;

  constructor(options: InstanceOptions) {
    this.o = options;
    this.name = options.name;
    this.runtime = options.runtime;
  }

  start(): void {
    this.loop = this.run();
    this.poller = setInterval(() => void this.checkRestart(), this.o.pollMs ?? 1_000);
    this.poller.unref();
    const socket = unixSocketOf(this.runtime);
    // A new HAProxy on this socket (fresh, restarted) is synced at once, not after a backoff or a poll.
    if (socket) this.unwatch = watchSocket(socket, () => (this.state === 'up' ? void this.checkRestart() : this.wake?.()));
  }

  /** `graceMs` 0: fenced (another replica may own the instance from now on): nothing in flight finishes. */
  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    this.stopped = true;
    clearInterval(this.poller);
    this.unwatch?.();
    this.wake?.();
    // A push in flight may finish; a hung HAProxy must not hold the stop (up to the command
    // timeout): its session is closed after a grace, which fails the command at once.
    if (graceMs === 0) this.o.client.close();
    const closing = setTimeout(() => this.o.client.close(), graceMs);
    await this.loop;
    clearTimeout(closing);
    this.o.client.close();
    this.settle(new CertdError('CERTD_E_STOPPED', `instance ${this.name}: daemon stopping`, { category: 'unavailable' }));
  }

  /**
   * Marks work as changed; resolves once this instance has `waitFor` (default: all of it) as
   * desired, or rejects on failure.
   */
  sync(ids: Iterable<WorkKey>, waitFor?: Iterable<WorkKey>): Promise<void> {
    const set = new Set(ids);
    // Nothing asked and nothing pending: the loop may be asleep and would never settle this.
    if (set.size === 0 && !this.needReconcile) return Promise.resolve();
    if (set.size > 0) this.changes++;
    for (const id of set) this.dirty.add(id);
    const wanted = waitFor ? new Set(waitFor) : set;
    const reloading = [...wanted].some((id) => (this.reloading.get(id.slice(2)) ?? 0) > Date.now());
    if (this.downError && !reloading && (this.state === 'down' || this.state === 'misconfigured')) {
      // Known down: the caller is told now, not after this request's own connect retries (a down
      // member of the fleet added ~300 ms to every update); the work is pushed when it answers.
      if (performance.now() - this.lastAttempt > DOWN_RETRY_MIN_MS) this.wake?.();
      return Promise.reject(this.downError);
    }
    const done = new Promise<void>((resolve, reject) =>
      this.waiters.push({ ids: wanted, resolve: (err) => (err ? reject(err) : resolve()) }),
    );
    if (wanted.size <= EARLY_SETTLE_MAX_IDS) this.urgentArrived = true;
    this.wake?.();
    return done;
  }

  /** Asks for a full comparison with what the instance reports (periodic drift repair). */
  requestReconcile(): void {
    if (this.state !== 'up') return;
    this.needReconcile = true;
    this.wake?.();
  }

  serves(id: string): boolean {
    const want = this.o.desired.get(id);
    const have = this.served.get(id);
    // apply() records the desired entry itself: the same object needs no line comparison (status()
    // asks this for every certificate, ~11 ms at 10,000 when each compares rendered lines).
    if (want !== undefined && have === want) return true;
    return Boolean(want && have && have.sha1 === want.sha1 && sameListLine(have, want));
  }

  /** Counts leave out the default certificate: operators count their own certificates. */
  status(): InstanceStatus {
    let inSync = 0;
    let missing = 0;
    for (const id of this.o.desired.keys()) {
      if (id === DEFAULT_CERT_ID) continue;
      if (this.serves(id)) inSync++;
      else if (!this.served.has(id)) missing++;
    }
    const total = this.o.desired.size - 1;
    return {
      name: this.name,
      runtime: this.runtime,
      state: this.state,
      pid: this.pid,
      lastError: this.lastError?.message,
      lastErrorAt: this.lastError?.at,
      inSync,
      missing,
      stale: total - inSync - missing,
      pending: total - inSync,
      commands: this.o.client.commandsSent,
      reconciles: this.reconciles,
      reconcilesUnchanged: this.reconcilesUnchanged,
      lastReconcile: this.lastReconcile,
    };
  }

  private async run(): Promise<void> {
    let backoff = BACKOFF_MIN_MS;
    /** The catch-up a reconcile found (a fresh or restarted instance): logged once it is done. */
    let catchUp: { since: number; changes: number } | undefined;
    while (!this.stopped) {
      if (!this.needReconcile && this.dirty.size === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      try {
        if (this.needReconcile) {
          this.lastAttempt = performance.now();
          await this.reconcile();
          // It answered: up from here, so status and the gauge agree before the pushes finish.
          this.markUp();
          const changes = [...this.dirty].filter((w) => w.startsWith('c:')).length;
          if (changes > 0) catchUp ??= { since: performance.now(), changes };
        }
        // Certificates first, then map keys: a name enters known.map once it is served.
        const { certs, maps, urgent, onlyUrgent } = this.nextWork();
        const applying = new Set<WorkKey>([...certs.map(certWork), ...maps]);
        this.urgentArrived = false;
        let i = 0;
        while (i < certs.length) {
          // A caller waiting for a few certificates (an update, a handshake) arrived behind a long
          // catch-up: the rest goes back to the set and the next pass takes the caller's first.
          // A pass of such callers' work alone goes on: the newcomer is next in any case.
          if (this.urgentArrived && !onlyUrgent) break;
          const progress = { i };
          try {
            if (this.startsStream(certs, i, urgent)) {
              await this.streamNew(certs, progress, urgent, applying, onlyUrgent);
            } else {
              let refusal: HaproxyCommandError | undefined;
              try {
                await this.apply(certs[i]!);
              } catch (err) {
                // HAProxy said no to this one change: the others must not wait behind it.
                if (!(err instanceof HaproxyCommandError)) throw err;
                refusal = err;
              }
              this.applied(certs[i]!, refusal, applying);
              progress.i++;
            }
          } catch (err) {
            for (const left of [...certs.slice(progress.i).map(certWork), ...maps]) this.dirty.add(left);
            throw err;
          }
          i = progress.i;
        }
        if (i < certs.length) {
          for (const left of [...certs.slice(i).map(certWork), ...maps]) this.dirty.add(left);
          continue;
        }
        if (maps.length > 0) {
          // Waiters for certificates alone need not wait for the map pass either: their answers go
          // out in this turn of the event loop, the map pass in the next.
          this.settle(undefined, applying);
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        try {
          await this.applyMaps(maps.map((w) => w.slice(2)));
        } catch (err) {
          // Marked down below, so the next pass reconciles: what the instance's maps hold is read
          // again before any of this is retried (a half-applied add is not added twice).
          for (const left of maps) this.dirty.add(left);
          throw err;
        }
        this.markUp();
        backoff = BACKOFF_MIN_MS;
        this.settle();
        if (catchUp && this.dirty.size === 0 && !this.needReconcile) {
          const ms = Math.round(performance.now() - catchUp.since);
          this.o.log.info({ instance: this.name, changes: catchUp.changes, serving: this.served.size, refused: this.refused.size, ms }, 'in sync');
          catchUp = undefined;
        }
      } catch (err) {
        this.markDown(err);
        this.settle(err instanceof Error ? err : new Error(String(err)));
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
      }
    }
  }

  /**
   * The work a pass takes out of the dirty set: the keys small waiters wait for when there are
   * such (an update or a handshake arriving during a long catch-up goes first), else everything;
   * certificates by the priority hint's rank, then in the order they were marked; map keys apart.
   */
  private nextWork(): { certs: string[]; maps: WorkKey[]; urgent: ReadonlySet<WorkKey>; onlyUrgent: boolean } {
    const urgent = new Set<WorkKey>();
    for (const w of this.waiters) if (w.ids.size <= EARLY_SETTLE_MAX_IDS) for (const id of w.ids) if (this.dirty.has(id)) urgent.add(id);
    const take = urgent.size > 0 && urgent.size < this.dirty.size ? urgent : new Set(this.dirty);
    if (take.size > 0) this.changes++;
    const ranked: [number, string][] = [];
    const rest: string[] = [];
    const maps: WorkKey[] = [];
    for (const w of take) {
      this.dirty.delete(w);
      if (w.startsWith('m:')) {
        maps.push(w);
        continue;
      }
      const rank = this.o.rank?.get(w.slice(2));
      if (rank === undefined) rest.push(w.slice(2));
      else ranked.push([rank, w.slice(2)]);
    }
    ranked.sort((a, b) => a[0] - b[0]);
    return { certs: [...ranked.map(([, id]) => id), ...rest], maps, urgent, onlyUrgent: take.size > 0 && [...take].every((w) => urgent.has(w)) };
  }

  /**
   * Whether `certs[from]` starts a run worth a stream (see streamNew): two or more certificates new
   * to this instance, all waited for by small waiters or none (a run does not mix the two, so a
   * waiter's push is never behind a long chunk).
   */
  private startsStream(certs: readonly string[], from: number, urgent: ReadonlySet<WorkKey>): boolean {
    const first = certs[from];
    return first !== undefined && this.newRun(certs, from, urgent, urgent.has(certWork(first)), 2).length > 1;
  }

  /** From `certs[from]` on, up to `max` certificates new to this instance, of one kind (`waitedFor` or not). */
  private newRun(certs: readonly string[], from: number, urgent: ReadonlySet<WorkKey>, waitedFor: boolean, max: number): string[] {
    const run: string[] = [];
    for (let i = from; i < certs.length && run.length < max; i++) {
      const want = this.o.desired.get(certs[i]!);
      // A client CA must be loaded before its line: those go one by one.
      if (!want || want.caFile || this.served.has(want.id) || urgent.has(certWork(want.id)) !== waitedFor) break;
      run.push(want.id);
    }
    return run;
  }

  /**
   * Pushes the runs of certificates new to this instance from `certs[progress.i]` on as one
   * pipelined stream (see RuntimeClient.putNewCertsPipelined): batches of PUSH_CHUNK, the next one's
   * PEMs read while HAProxy loads the one before; or, for certificates small waiters wait for,
   * batches of one, URGENT_IN_FLIGHT at once. It ends at the first certificate that is not new or
   * not of the stream's kind (see startsStream), or when a small waiter arrives behind a pass not
   * only for such waiters. `progress.i` moves past each batch once it is settled, in order, so on a failure
   * whatever is not settled goes back to the dirty set.
   */
  private async streamNew(certs: readonly string[], progress: { i: number }, urgent: ReadonlySet<WorkKey>, applying: Set<WorkKey>, onlyUrgent: boolean): Promise<void> {
    const { client, crtList, metrics } = this.o;
    let handedOut = progress.i;
    const waitedFor = urgent.has(certWork(certs[progress.i]!));
    await client.putNewCertsPipelined(crtList, async () => {
      if (this.urgentArrived && !onlyUrgent) return undefined;
      const ids = this.newRun(certs, handedOut, urgent, waitedFor, waitedFor ? 1 : PUSH_CHUNK);
      if (ids.length === 0 || (!waitedFor && ids.length === 1)) return undefined;
      handedOut += ids.length;
      const wants = ids.map((id) => this.o.desired.get(id)!);
      const outcomes: (HaproxyCommandError | undefined)[] = wants.map(() => undefined);
      const pems = await Promise.all(wants.map((w, k) => this.pemOf(w).catch((err: HaproxyCommandError) => void (outcomes[k] = err))));
      const go = wants.map((_, k) => k).filter((k) => pems[k] !== undefined);
      const started = performance.now();
      return {
        items: go.map((k) => ({ entry: crtListLineParts(wants[k]!), pem: pems[k]! })),
        settle: (pushed) => {
          for (const [j, k] of go.entries()) {
            const err = pushed[j];
            if (err === undefined) {
              this.served.set(wants[k]!.id, wants[k]!);
              metrics.observe(this.name, 'add', started);
            } else {
              outcomes[k] = err instanceof HaproxyCommandError ? err : new HaproxyCommandError(err.message, { cause: err });
            }
          }
          for (const [k, id] of ids.entries()) this.applied(id, outcomes[k], applying);
          progress.i += ids.length;
        },
      };
    }, waitedFor ? { inFlight: URGENT_IN_FLIGHT } : {});
  }

  /** After one certificate's push: its refusal recorded, or cleared; its small waiters answered. */
  private applied(id: string, refusal: HaproxyCommandError | undefined, applying: Set<WorkKey>): void {
    if (refusal) this.refusedAtRuntime(id, refusal);
    else {
      this.refused.delete(id);
      this.reloading.delete(id);
    }
    // Whoever waits for this certificate and a few others (a handshake, on-demand) is answered
    // now, not after the rest of the batch (10 names at once waited for all 10 pushes).
    const work = certWork(id);
    applying.delete(work);
    this.settle(undefined, applying, work);
  }

  private pemOf(e: CertEntry): Promise<string> {
    return (this.o.pem ?? pemOfEntry)(e);
  }

  /**
   * A hitless reload that loads the files (a new forge intermediate, say): false without a master
   * socket. See reloadThenReconcile.
   */
  reloadFromFiles(reason: string): Promise<boolean> {
    const reload = this.o.reload;
    return reload ? this.reloadThenReconcile(reload, reason).then(() => true) : Promise.resolve(false);
  }

  /**
   * The reload loads the files, so every write started so far (the crt-list and known.map too) is
   * flushed first: the new worker starts with every certificate this process has written, never
   * without one it served a moment before. Then the new worker is learnt before anything else.
   */
  private async reloadThenReconcile(reload: InstanceReload, reason: string, loaded?: () => void): Promise<void> {
    await this.o.filesWritten?.();
    await reload.request(reason);
    this.needReconcile = true;
    loaded?.();
    this.wake?.();
  }

  /**
   * Records a runtime refusal, which the caller is told. With a master socket, a hitless reload
   * loads the files instead: requested once per version of the certificate (the same refusal again
   * after that reload means the files did not help either: no reload loop), and run beside the
   * worker, so pushes to this instance (a waiting on-demand handshake) go on meanwhile.
   */
  private refusedAtRuntime(id: string, err: HaproxyCommandError): void {
    const sha1 = this.o.desired.get(id)?.sha1 ?? '';
    const again = this.refused.get(id);
    if (again?.message.includes(err.message) !== true) this.o.log.error({ instance: this.name, cert: id, err: err.message }, 'haproxy refused the change at runtime');
    if (!this.o.reload) {
      this.refused.set(id, new HaproxyCommandError(`instance ${this.name} cannot load it at runtime: ${err.message} (set a master socket for this instance to allow a reload fallback)`));
      return;
    }
    if (this.reloading.get(id) === Infinity) return;
    this.reloading.delete(id);
    if (this.reloadedFor.get(id) === sha1) {
      this.refused.set(id, new HaproxyCommandError(`instance ${this.name} cannot load it at runtime, and a reload did not load it either: ${err.message}`));
      return;
    }
    this.reloadedFor.set(id, sha1);
    // Not refused meanwhile: its waiters wait (within their deploy bound) for the reload's outcome.
    this.reloading.set(id, Infinity);
    this.refused.delete(id);
    // Its waiters stop waiting only once the new worker is learnt (RELOAD_SETTLE_MS after the reload).
    this.reloadThenReconcile(this.o.reload, `${id}: ${err.message}`, () => this.reloading.set(id, Date.now() + RELOAD_SETTLE_MS)).then(
      () => undefined,
      (reloadErr: Error) => {
        this.o.log.error({ instance: this.name, cert: id, err: reloadErr.message }, 'fallback reload failed');
        if (this.o.desired.get(id)?.sha1 === sha1) this.refused.set(id, new HaproxyCommandError(`instance ${this.name} cannot load it at runtime (${err.message}), and the reload failed: ${reloadErr.message}`));
        this.reloading.delete(id);
        this.settle();
      },
    );
  }

  /**
   * Resolves waiters whose ids are all clean (`applying`: taken from dirty but not done yet); with
   * `justDone`, only small waiters on that id. With an error every current waiter is rejected: the
   * caller learns now, the worker keeps retrying.
   */
  private settle(err?: Error, applying?: ReadonlySet<WorkKey>, justDone?: WorkKey): void {
    const keep: Waiter[] = [];
    for (const w of this.waiters) {
      // After each push only small waiters on that id are looked at: checking costs O(ids), and a
      // 10,000-certificate sync would otherwise pay it 10,000 times. The others wait for the batch end.
      if (justDone && !(w.ids.size <= EARLY_SETTLE_MAX_IDS && w.ids.has(justDone))) {
        keep.push(w);
        continue;
      }
      const now = Date.now();
      const reloading = [...w.ids].some((id) => (this.reloading.get(id.slice(2)) ?? 0) > now);
      const pending = reloading || this.needReconcile || [...w.ids].some((id) => this.dirty.has(id) || applying?.has(id));
      // Waiters on a reload hear its outcome, not the blips of the socket while it happens.
      if (err && !reloading) w.resolve(err);
      else if (pending) keep.push(w);
      else w.resolve([...w.ids].map((id) => this.refused.get(id.slice(2))).find((e) => e !== undefined));
    }
    this.waiters = keep;
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** Brings one id to the desired state on this instance. */
  private async apply(id: string): Promise<void> {
    const want = this.o.desired.get(id);
    const have = this.served.get(id);
    const { client, crtList, metrics } = this.o;
    const started = performance.now();
    if (!want) {
      if (!have) return;
      await ignoreNotFound(client.delCrtListEntry(crtList, have.pemPath));
      await ignoreNotFound(client.delSslCert(have.pemPath));
      if (have.caFile) await ignoreNotFound(client.delSslCaFile(have.caFile.path));
      this.served.delete(id);
      metrics.observe(this.name, 'remove', started);
      return;
    }
    if (have && have.sha1 === want.sha1 && sameListLine(have, want)) return;
    if (want.caFile && want.caFile.pem !== have?.caFile?.pem) await client.putCaFile(want.caFile.path, want.caFile.pem);
    const line = crtListLineParts(want);
    if (!have) {
      // New on this instance: certificate and crt-list line in two round trips.
      await client.putCertAndListEntry(crtList, line, await this.pemOf(want));
    } else {
      if (have.sha1 !== want.sha1) await client.putCert(want.pemPath, await this.pemOf(want));
      if (!sameListLine(have, want)) {
        await ignoreNotFound(client.delCrtListEntry(crtList, have.pemPath));
        await client.addCrtListEntry(crtList, line);
      }
    }
    this.served.set(id, want);
    metrics.observe(this.name, have ? 'update' : 'add', started);
  }

  /**
   * Brings map keys (`<path>\n<key>` each) to their desired values on this instance: new keys of
   * a map in one `add map` payload, changed and removed keys one command each.
   */
  private async applyMaps(pathsAndKeys: string[]): Promise<void> {
    const adds = new Map<string, [string, string][]>();
    for (const pathAndKey of pathsAndKeys) {
      const [path, key] = pathAndKey.split('\n') as [string, string];
      const served = this.servedMaps.get(path);
      if (!served) continue; // this HAProxy does not load that map: nothing to keep in step
      const want = this.o.desiredMaps.get(path)?.get(key);
      // A name enters known.map once its certificate is served here: one this HAProxy refused stays
      // out, so its handshakes still reach the daemon (the reconcile that retries it adds the name).
      if (path === this.o.knownMap && want !== undefined && this.refused.has(want)) continue;
      if (want === served.get(key)) continue;
      if (want === undefined) {
        await ignoreNotFound(this.o.client.delMap(path, key));
        served.delete(key);
      } else if (served.has(key)) {
        await this.o.client.setMap(path, key, want);
        served.set(key, want);
      } else {
        let list = adds.get(path);
        if (!list) adds.set(path, (list = []));
        list.push([key, want]);
      }
    }
    for (const [path, entries] of adds) {
      await this.o.client.addMapEntries(path, entries);
      const served = this.servedMaps.get(path)!;
      for (const [key, value] of entries) served.set(key, value);
    }
  }

  /**
   * Learns what the instance serves, then marks every difference dirty: missing or stale certs are
   * pushed, ours that are no longer desired removed. Cheap digests first: the `show ssl cert`
   * listing (names), our crt-list's lines and the maps, each one command whatever N. While the
   * worker is the one we last pushed to, what we pushed (and its SHA-1) is believed for every
   * certificate both listings still show; single certificates are read (pipelined) only where the
   * digests differ, or for every one after a restart or at first contact. `served` is replaced only
   * at the end: status never reports served certificates as missing while a pass runs.
   */
  private async reconcile(): Promise<void> {
    const { client, desired } = this.o;
    const started = performance.now();
    const commandsBefore = client.commandsSent ?? 0;
    const info = await client.showInfo();
    const sameWorker = this.servedPid !== undefined && this.servedPid === info.pid;
    // Byte-identical replies on the same worker, with nothing changed on our side since the last
    // comparison, compare the same way again: their parse and comparison are skipped (3.9–4.9 s a
    // pass at 100,000). Anything else (a reply differs, a restart, a push since) compares in full.
    const last = sameWorker && this.nothingChangedSince(this.compared) ? this.compared : undefined;
    let [certsReply, listReply] = await Promise.all([client.showSslCertsSince(last?.certs), this.loadedCrtList(last?.list)]);
    let mapReplies = await this.loadedMaps(last?.maps);
    const unchanged = last !== undefined && certsReply.value === undefined && listReply.value === undefined && sameKeys(mapReplies, last.maps) && [...mapReplies.values()].every((r) => r.value === undefined);
    const certsRead: CertEntry[] = [];
    if (!unchanged) {
      // A reply the digest left unparsed is read again: the others differ, so the whole comparison is made.
      if (certsReply.value === undefined) certsReply = await client.showSslCertsSince(undefined);
      if (listReply.value === undefined) listReply = await this.loadedCrtList(undefined);
      if ([...mapReplies.values()].some((r) => r.value === undefined)) mapReplies = await this.loadedMaps(undefined);
      certsRead.push(...(await this.compare(info.pid, certsReply.value!, listReply.value!, mapReplies)));
    }
    this.compared = {
      pid: info.pid,
      certs: certsReply.digest,
      list: listReply.digest,
      maps: new Map([...mapReplies].map(([path, r]) => [path, r.digest])),
      generation: this.o.generation?.() ?? 0,
      changes: this.changes,
    };
    this.pid = info.pid;
    this.needReconcile = false;
    const ms = Math.round(performance.now() - started);
    this.reconciles++;
    if (unchanged) this.reconcilesUnchanged++;
    this.lastReconcile = { at: new Date().toISOString(), ms, commands: (client.commandsSent ?? 0) - commandsBefore, certsRead: certsRead.length, unchanged };
    const fields = { instance: this.name, pid: info.pid, serving: this.served.size, desired: desired.size, certsRead: certsRead.length, ms };
    if (unchanged) this.o.log.debug(fields, 'reconciled: replies unchanged');
    else this.o.log.info(fields, 'reconciled');
  }

  /**
   * Whether a pass may trust `c`: nothing was handed to this instance since (no sync, no work
   * taken), the deployer's expected state has the same generation, and nothing waits for a
   * reconcile to be retried (a refusal, a reload).
   */
  private nothingChangedSince(c: ComparedAgainst | undefined): boolean {
    return (
      c !== undefined &&
      c.changes === this.changes &&
      c.generation === (this.o.generation?.() ?? 0) &&
      this.dirty.size === 0 &&
      this.refused.size === 0 &&
      this.reloading.size === 0
    );
  }

  /** The full comparison of a reconcile pass: replaces `served` and marks every difference dirty; returns the certificates read one by one. */
  private async compare(pid: number, certs: StoreListing, list: readonly CrtListEntry[], mapReplies: ReadonlyMap<string, Digested<MapEntry[]>>): Promise<CertEntry[]> {
    const { certDir, desired } = this.o;
    const lines = new Map(list.map((e) => [e.path, e]));
    const sameWorker = this.servedPid !== undefined && this.servedPid === pid;
    const next = new Map<string, CertEntry>();
    const unknown: CertEntry[] = [];
    const byPath = new Map<string, CertEntry>();
    for (const e of desired.values()) byPath.set(e.pemPath, e);
    for (const path of certs.certs) {
      const want = byPath.get(path);
      if (want) {
        const line = lines.get(path);
        if (!line) continue;
        const pushed = this.served.get(want.id);
        // Same crt-list line as pushed is assumed when its names agree: lines only ever come from our own file or pushes.
        if (sameWorker && pushed && pushed.pemPath === path && line.sni.join(' ') === pushed.sni.join(' ')) next.set(want.id, pushed);
        else unknown.push(want);
      } else if (path.startsWith(`${certDir}/`) && !path.startsWith(`${certDir}/${FORGE_DIR}/`)) {
        // Ours, not desired any more: remember it so apply() removes it.
        const id = `stale:${path}`;
        next.set(id, { id, pemPath: path, sha1: '', serial: '', sni: [], options: {} });
      }
    }
    const sha1s = await this.servedSha1s(unknown);
    for (const [i, want] of unknown.entries()) {
      const sha1 = sha1s[i];
      next.set(want.id, sha1 === want.sha1 ? want : { ...want, sha1: sha1 ?? '' });
    }
    const nextMaps = new Map([...mapReplies].map(([path, r]) => [path, new Map(r.value!.map((e) => [e.key, e.value]))]));
    this.served = next;
    this.servedMaps = nextMaps;
    this.servedPid = pid;
    for (const id of next.keys()) if (id.startsWith('stale:')) this.dirty.add(certWork(id));
    for (const id of desired.keys()) if (!this.serves(id)) this.dirty.add(certWork(id));
    // A certificate a reload loaded, or one refused before that is served now: settled as served.
    for (const id of new Set([...this.refused.keys(), ...this.reloading.keys()])) {
      if (!this.serves(id)) continue;
      this.refused.delete(id);
      this.reloading.delete(id);
    }
    for (const [path, served] of nextMaps) {
      const want = this.o.desiredMaps.get(path)!;
      for (const [key, value] of want) if (served.get(key) !== value) this.dirty.add(mapWork(path, key));
      for (const key of served.keys()) if (!want.has(key)) this.dirty.add(mapWork(path, key));
    }
    return unknown;
  }

  /** `show ssl crt-list` of our list; HaproxyMisconfiguredError, saying what to fix, when no bind loads it. */
  private async loadedCrtList(since: string | undefined): Promise<Digested<CrtListEntry[]>> {
    try {
      return await this.o.client.showCrtListSince(this.o.crtList, since);
    } catch (err) {
      if (!(err instanceof HaproxyNotFoundError)) throw err;
      throw new HaproxyMisconfiguredError(
        `instance ${this.name} is up, but no bind line of its config loads the crt-list ${this.o.crtList}: add \`ssl crt-list ${this.o.crtList}\` ` +
          'to a bind (`haproxy-certd haproxy-config` prints one), or set haproxy.crtList to the list your binds load, then reload HAProxy',
        { cause: err },
      );
    }
  }

  /**
   * The SHA-1 of what the instance serves for each entry, read with pipelined `show ssl cert
   * <path>`. A reply cut short at one CLI buffer (a certificate with many long names: its SAN line
   * alone fills 16 KB) has no SHA-1 line; it is never read as "different": the serial, printed
   * before the names, says whether it is the desired one. A certificate whose names alone would
   * come near that buffer is not asked about at all: 2.6.12's worker was seen to crash (SIGSEGV in
   * the CLI applet) printing one with 100 names of 190 characters. It was loaded from the file we
   * wrote (the runtime API cannot take it), so that file's version is taken as served.
   */
  private async servedSha1s(wants: readonly CertEntry[]): Promise<(string | undefined)[]> {
    const out: (string | undefined)[] = wants.map(() => undefined);
    const ask: number[] = [];
    for (const [i, want] of wants.entries()) {
      if (want.sni.reduce((n, name) => n + name.length + SAN_OVERHEAD_BYTES, 0) > SHOW_CERT_SAFE_SAN_BYTES) out[i] = want.sha1;
      else ask.push(i);
    }
    const details = await this.o.client.showSslCertMany(ask.map((i) => wants[i]!.pemPath));
    for (const [k, i] of ask.entries()) {
      const d = details[k];
      const want = wants[i]!;
      if (d === undefined) continue;
      if (d.sha1 !== undefined) out[i] = d.sha1;
      else if (d.serial !== undefined && normalizeSerialHex(d.serial) === want.serial) out[i] = want.sha1;
    }
    return out;
  }

  /** The maps this instance loads, as it has them now (parsed where the digest differs from `since`'s); a map its config does not load is left out. */
  private async loadedMaps(since: ReadonlyMap<string, string> | undefined): Promise<Map<string, Digested<MapEntry[]>>> {
    const maps = new Map<string, Digested<MapEntry[]>>();
    for (const path of this.o.desiredMaps.keys()) {
      try {
        maps.set(path, await this.o.client.showMapSince(path, since?.get(path)));
      } catch (err) {
        if (!(err instanceof HaproxyNotFoundError)) throw err;
        this.o.log.debug({ instance: this.name, map: path }, 'map not loaded by this haproxy: skipped');
      }
    }
    return maps;
  }

  private async checkRestart(): Promise<void> {
    // One at a time: a long push stream holds the session, and polls must not pile up behind it.
    if (this.stopped || this.state !== 'up' || this.checking) return;
    this.checking = true;
    try {
      const info = await this.o.client.showInfo();
      if (this.pid !== undefined && info.pid !== this.pid) {
        this.o.log.warn({ instance: this.name, oldPid: this.pid, pid: info.pid }, 'haproxy restarted: re-pushing');
        this.needReconcile = true;
        this.wake?.();
      }
    } catch (err) {
      this.markDown(err);
      this.needReconcile = true;
      this.wake?.();
    } finally {
      this.checking = false;
    }
  }

  private markUp(): void {
    if (this.state !== 'up') this.o.log.info({ instance: this.name }, 'instance up');
    this.state = 'up';
    this.lastError = undefined;
    this.downError = undefined;
    this.o.metrics.instanceUp(this.name, true);
  }

  private markDown(err: unknown): void {
    // A stopped instance reports nothing: a `show info` cut short by the stop (checkRestart is
    // not awaited by it) would bring back the metric series the deployer dropped with it.
    if (this.stopped) return;
    const message = err instanceof Error ? err.message : String(err);
    const state = err instanceof HaproxyMisconfiguredError ? 'misconfigured' : 'down';
    if (this.state !== state) this.o.log.warn({ instance: this.name, err: message }, `instance ${state}; retrying with backoff`);
    this.state = state;
    this.downError = err instanceof Error ? err : new Error(message);
    this.needReconcile = true;
    this.lastError = { message, at: new Date().toISOString() };
    this.o.metrics.instanceUp(this.name, false);
    this.o.metrics.error(this.name);
  }
}

function sameKeys(a: ReadonlyMap<string, unknown>, b: ReadonlyMap<string, unknown>): boolean {
  return a.size === b.size && [...a.keys()].every((k) => b.has(k));
}

function unixSocketOf(runtime: string | undefined): string | undefined {
  if (!runtime) return undefined;
  try {
    const a = parseRuntimeAddress(runtime);
    return a.kind === 'unix' ? a.path : undefined;
  } catch {
    return undefined;
  }
}

async function ignoreNotFound(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof HaproxyNotFoundError)) throw err;
  }
}
