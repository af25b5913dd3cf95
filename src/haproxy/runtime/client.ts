import { createHash } from 'node:crypto';
import { channel } from 'node:diagnostics_channel';
import {
  HaproxyExistsError,
  HaproxyLockedError,
  HaproxyNoTransactionError,
  HaproxyNotFoundError,
  HaproxyTxnMismatchError,
  HaproxyUnreachableError,
} from '../../core/errors.js';
import { formatRuntimeAddress, parseRuntimeAddress, type RuntimeAddress } from './address.js';
import { SerialQueue } from '../../core/async.js';
import { formatCrtListLine, type CrtListLineParts } from '../crtlist/line.js';
import { checkMapWord, checkPath, sanitizePem } from './args.js';
import {
  type CrtListEntry,
  expectReply,
  foreignTransaction,
  isLocked,
  type MapEntry,
  OK,
  parseCaFileList,
  parseCrtList,
  parseInfo,
  parseMap,
  parseSslCertDetails,
  parseSslCertList,
  replyError,
  type RuntimeInfo,
  severalEntryLines,
  showError,
  type SslCertDetails,
  type StoreListing,
} from './reply.js';
import { RuntimeSession, type SessionCommand } from './session.js';

export interface RuntimeClientOptions {
  /** Bound on connecting and getting the first prompt (default 2000 ms). */
  connectTimeoutMs?: number;
  /** Bound on each reply (default 15000 ms; a commit of a cert used by thousands of binds takes ~1 s). */
  commandTimeoutMs?: number;
  /** Connection attempts per call before HaproxyUnreachableError (default 3). */
  connectAttempts?: number;
  /** First delay between connection attempts, doubling (default 100 ms). */
  reconnectDelayMs?: number;
  /** Retries of a command refused with "currently locked" (default 8, ~3.5 s in all). */
  lockedRetries?: number;
  /** First delay before a locked retry, doubling up to 1 s (default 25 ms). */
  lockedDelayMs?: number;
  /**
   * A session idle this long is replaced before use (default 30 s). At connect we raise the
   * session's CLI timeout to twice this, so HAProxy never closes it under a command in flight.
   */
  idleTimeoutMs?: number;
  /** See SessionOptions.maxCommandBytes (default 16000). */
  maxCommandBytes?: number;
  /**
   * At each connect, abort a cert or CA-file transaction left open (by a crashed writer or another
   * client): in 2.6.12 an open transaction captures the next `set` of *any* path (default true).
   */
  abortStaleTransactions?: boolean;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** Bound on each reply of this call (default: commandTimeoutMs). */
  timeoutMs?: number;
}

/** A crt-list line to add: `path [options] sni…` (rendered as in the crt-list file). */
export type CrtListLine = CrtListLineParts;

/**
 * A listing's digest (its reply's length and SHA-1) and, unless it equals the `since` digest the
 * caller passed, the listing parsed: a byte-identical reply is not parsed again.
 */
export interface Digested<T> {
  digest: string;
  value?: T;
}

export type { CrtListEntry, MapEntry, RuntimeInfo, SslCertDetails, StoreListing };

/** Diagnostics channel: connects, stale transactions aborted, lock retries, transaction mismatches. */
export const runtimeChannel = channel('haproxy-certd:haproxy-runtime');

const DEFAULTS: Required<RuntimeClientOptions> = {
  connectTimeoutMs: 2_000,
  commandTimeoutMs: 15_000,
  connectAttempts: 3,
  reconnectDelayMs: 100,
  lockedRetries: 8,
  lockedDelayMs: 25,
  idleTimeoutMs: 30_000,
  maxCommandBytes: 16_000,
  abortStaleTransactions: true,
};

/**
 * Commands sent in one write when many independent ones go out (reads of a reconcile): enough to
 * keep HAProxy busy between our reads, small enough that a reply stream stays a few hundred KB.
 */
const PIPELINE_COMMANDS = 64;

/**
 * Batches of a putNewCertsPipelined stream in HAProxy's hands at once (default): two, so the next
 * one is already in its input while it answers one and we check the replies and read the next PEMs.
 */
const PIPELINE_BATCHES = 2;

/** putNewCertsPipelined's options: `inFlight` batches in HAProxy's hands at once (default PIPELINE_BATCHES). */
export interface PipelineOptions extends CallOptions {
  inFlight?: number;
}

/** A certificate new to the instance and its crt-list line. */
export interface NewCertItem {
  entry: CrtListLine;
  pem: string;
}

/** One batch of a putNewCertsPipelined stream, and where its outcomes go (one per item, in order). */
export interface NewCertsBatch {
  items: readonly NewCertItem[];
  settle(outcomes: (Error | undefined)[]): void;
}

interface PreparedNew {
  add: ReturnType<typeof crtListAdd>;
  payload: string;
}

/** A batch sent and not yet settled: its valid items (in order), their replies, its settle. */
interface InFlightNew {
  prepared: PreparedNew[];
  replies: Promise<string[]>;
  settle(outcomes: (Error | undefined)[]): void;
}

/** putNew's five commands, pipelined: new, abort (a transaction left on this path), set, commit, add. */
function newCertCommands({ add, payload }: PreparedNew): SessionCommand[] {
  return [
    { line: `new ssl cert ${add.path}` },
    { line: `abort ssl cert ${add.path}` },
    { line: `set ssl cert ${add.path}`, payload },
    { line: `commit ssl cert ${add.path}` },
    add.command,
  ];
}

/** What differs between certificate and CA-file stores in the runtime API. */
const STORES = {
  cert: { noun: 'ssl cert', created: OK.newCert, set: OK.setCert, deleted: OK.delCert },
  caFile: { noun: 'ssl ca-file', created: OK.newCaFile, set: OK.setCaFile, deleted: OK.delCaFile },
} as const;
type StoreKind = keyof typeof STORES;

/**
 * Client for one HAProxy instance's runtime API. Keeps ONE prompt-mode session, opened lazily
 * and reopened after a failure (bounded attempts), and runs every call through one serial queue:
 * the instance's single certificate transaction is never shared between our own calls, and the
 * multi-command operations (putCert, putCertAndListEntry, putCaFile, addMapEntries, delCrtListEntry) run as one unit.
 * Every method is safe to call concurrently; calls complete in call order.
 * Arguments are validated before anything is sent (InvalidNameError / InvalidPemError).
 */
export class RuntimeClient {
  readonly address: RuntimeAddress;
  private readonly o: Required<RuntimeClientOptions>;
  private readonly queue = new SerialQueue();
  private session?: RuntimeSession;
  /** Cert paths HAProxy has (from `show ssl cert` at connect, then our own changes): saves a `new`. */
  private known = new Set<string>();
  /** `known` changed by our own commands since the last listing it was read from. */
  private knownEdited = false;
  /** The path of the transaction we opened and have not committed or aborted yet, per store kind. */
  private readonly ours: Partial<Record<StoreKind, string>> = {};
  private closed = false;
  private sent = 0;
  /** Aborts a session being opened (connect, prompt, retries) when the client is closed. */
  private readonly closing = new AbortController();

  constructor(address: string | RuntimeAddress, options: RuntimeClientOptions = {}) {
    this.address = typeof address === 'string' ? parseRuntimeAddress(address) : address;
    this.o = { ...DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
  }

  /**
   * `show info`: the worker's pid (a new pid means a restart or reload that lost runtime state),
   * uptime, version. After a reload our open session still reaches the *old* worker, which keeps
   * it while soft-stopping (measured): when it reports `Stopping: 1`, the session is replaced and
   * the new worker asked, so polling this notices reloads.
   */
  async showInfo(o: CallOptions = {}): Promise<RuntimeInfo> {
    return this.job(async (s) => {
      const info = parseInfo(await this.show(s, 'show info', o));
      if (info.raw.Stopping !== '1') return info;
      s.destroy('the worker is stopping (HAProxy reloaded)');
      return parseInfo(await this.show(await this.ensureSession(o), 'show info', o));
    }, o, true);
  }

  /** `show ssl cert`: loaded certificate paths, and the open transaction's path if any. */
  async showSslCerts(o: CallOptions = {}): Promise<StoreListing> {
    return (await this.showSslCertsSince(undefined, o)).value!;
  }

  /** `show ssl cert`, parsed only when its reply differs from the one `since` digests (see Digested). */
  async showSslCertsSince(since: string | undefined, o: CallOptions = {}): Promise<Digested<StoreListing>> {
    return this.readSince('show ssl cert', since, o, (body) => {
      const listing = parseSslCertList(body);
      this.known = new Set(listing.certs);
      this.knownEdited = false;
      return listing;
    }, () => !this.knownEdited);
  }

  /** Runtime commands sent to this instance so far (each line of a pipelined batch counts). */
  get commandsSent(): number {
    return this.sent;
  }

  /**
   * `show ssl cert <path>` for each path, PIPELINE_COMMANDS to a write (one round trip each instead
   * of one per certificate): details in the same order, undefined for a path HAProxy does not have.
   */
  async showSslCertMany(paths: readonly string[], o: CallOptions = {}): Promise<(SslCertDetails | undefined)[]> {
    const commands = paths.map((p) => ({ line: `show ssl cert ${checkPath(p)}` }));
    const out: (SslCertDetails | undefined)[] = [];
    for (let i = 0; i < commands.length; i += PIPELINE_COMMANDS) {
      const chunk = commands.slice(i, i + PIPELINE_COMMANDS);
      const replies = await this.job((s) => this.execAll(s, chunk, o), o, true);
      for (const [j, body] of replies.entries()) {
        const err = showError(chunk[j]!.line, body);
        if (err instanceof HaproxyNotFoundError) out.push(undefined);
        else if (err) throw err;
        else out.push(parseSslCertDetails(body));
      }
    }
    return out;
  }

  /**
   * putCertAndListEntry for several certificates new to this instance, each as putNew sends it,
   * all in one write (a fresh instance is synced at HAProxy's pace, not at one round trip per
   * certificate). Resolves with one outcome per item: undefined when served, the error when
   * HAProxy refused it. An item whose replies are not all the plain success (locked, a
   * transaction met, a refusal) is done again on its own the careful way, after any transaction
   * left open is aborted; connection failures reject.
   */
  async putNewCertsAndListEntries(list: string, items: readonly NewCertItem[], o: CallOptions = {}): Promise<(Error | undefined)[]> {
    let outcomes: (Error | undefined)[] = [];
    let given = false;
    await this.putNewCertsPipelined(
      list,
      async () => (given ? undefined : ((given = true), { items, settle: (out) => void (outcomes = out) })),
      o,
    );
    return outcomes;
  }

  /**
   * putNewCertsAndListEntries for a stream of batches on one session: `next` is asked for the next
   * batch (undefined: the stream ends) while up to `inFlight` earlier ones are in HAProxy's
   * hands, so HAProxy never waits for our round trip, our reply checks or the PEM reads behind
   * `next` (a fresh instance's full sync runs at HAProxy's pace). Each batch is settled with its
   * outcomes, in order. A batch whose replies are not all the plain success stops the stream
   * until the batches already sent are answered and every such item was done again the careful
   * way (after aborting any transaction left open: with 2.6, one left open captures the sets sent
   * behind it, whose commits are then refused and whose adds find their stores empty, so nothing
   * wrong is served meanwhile). Connection failures reject; batches not settled by then are not.
   */
  async putNewCertsPipelined(list: string, next: () => Promise<NewCertsBatch | undefined>, o: PipelineOptions = {}): Promise<void> {
    const window = o.inFlight ?? PIPELINE_BATCHES;
    return this.job(async (s) => {
      const inFlight: InFlightNew[] = [];
      let ended = false;
      const send = async (): Promise<boolean> => {
        const batch = await next();
        if (!batch) return false;
        // Each item checked before it is sent: a bad value is that item's outcome, not the stream's.
        const refused: (Error | undefined)[] = batch.items.map(() => undefined);
        const prepared: (PreparedNew & { at: number })[] = [];
        for (const [at, { entry, pem }] of batch.items.entries()) {
          try {
            prepared.push({ add: crtListAdd(list, entry), payload: sanitizePem(pem), at });
          } catch (err) {
            refused[at] = err as Error;
          }
        }
        const commands = prepared.flatMap(newCertCommands);
        const replies = commands.length === 0 ? Promise.resolve([]) : s.executeAll(commands, { ...this.execOptions(o), behind: true });
        this.sent += commands.length;
        // Awaited in order below; a session failure rejects every batch at once, each seen there.
        replies.catch(() => undefined);
        inFlight.push({ settle: (out) => batch.settle(refused.map((r, at) => r ?? out[prepared.findIndex((p) => p.at === at)])), prepared, replies });
        return true;
      };
      try {
        for (;;) {
          while (!ended && inFlight.length < window) if (!(await send())) ended = true;
          const head = inFlight.shift();
          if (!head) return;
          const { again, listed } = this.checkNew(head.prepared, await head.replies);
          if (again.length === 0) {
            head.settle(head.prepared.map(() => undefined));
            continue;
          }
          // Trouble: nothing more goes out until the batches sent are answered and redone where needed.
          const troubled = [{ ...head, again, listed }];
          for (const b of inFlight.splice(0)) troubled.push({ ...b, ...this.checkNew(b.prepared, await b.replies) });
          const open = parseSslCertList(await this.show(s, 'show ssl cert', o)).transaction;
          if (open !== undefined) await this.abortQuietly(s, 'cert', open, o);
          delete this.ours.cert;
          for (const b of troubled) b.settle(await this.redoNew(s, b.prepared, b.again, b.listed, o));
        }
      } catch (err) {
        // Replies may still be coming for batches sent: the session cannot serve another call.
        if (inFlight.length > 0) s.destroy('a pipelined push stream failed');
        throw err;
      }
    }, o);
  }

  /** Which items of a pipelined batch need doing again, and which got their crt-list line anyway. */
  private checkNew(prepared: readonly PreparedNew[], replies: readonly string[]): { again: number[]; listed: Set<number> } {
    const again: number[] = [];
    const listed = new Set<number>();
    for (const [i, { add }] of prepared.entries()) {
      const [, , set, committed, added] = replies.slice(i * 5, i * 5 + 5);
      const setOk = OK.setCert.exec(set ?? '')?.[2] === add.path;
      const commitOk = OK.commit.exec(committed ?? '')?.[1] === add.path.replace(/\.+$/, '');
      let addOk = true;
      try {
        add.check(added ?? '');
      } catch {
        addOk = false;
      }
      if (setOk && commitOk && addOk) this.noteKnown('add', add.path);
      else again.push(i);
      if (addOk) listed.add(i);
    }
    return { again, listed };
  }

  /** Does the `again` items of a batch one by one with put(); the batch's outcomes. */
  private async redoNew(s: RuntimeSession, prepared: readonly PreparedNew[], again: readonly number[], listed: ReadonlySet<number>, o: CallOptions): Promise<(Error | undefined)[]> {
    const outcomes: (Error | undefined)[] = prepared.map(() => undefined);
    for (const i of again) {
      const { add, payload } = prepared[i]!;
      try {
        const reply = await this.put(s, 'cert', add.path, payload, o, listed.has(i) ? undefined : add.command);
        if (!listed.has(i)) add.check(reply!);
      } catch (err) {
        if (err instanceof HaproxyUnreachableError) throw err;
        outcomes[i] = err as Error;
      }
    }
    return outcomes;
  }

  /** `show ssl cert <path>`: serial, validity, SHA-1, SANs. HaproxyNotFoundError if absent. */
  async showSslCert(path: string, o: CallOptions = {}): Promise<SslCertDetails> {
    return this.read(`show ssl cert ${checkPath(path)}`, o, parseSslCertDetails);
  }

  /** `new ssl cert`: an empty store for a (possibly virtual) path. HaproxyExistsError if present. */
  async newSslCert(path: string, o: CallOptions = {}): Promise<void> {
    checkPath(path);
    return this.job((s) => this.create(s, 'cert', path, o), o);
  }

  /**
   * `set ssl cert` with the PEM as payload: opens or updates the instance's transaction. A
   * transaction another client left open on another path is aborted (event
   * `foreign-transaction-aborted`) and the set sent again; one we opened ourselves on another path
   * (setSslCert without commit) is HaproxyTxnMismatchError.
   */
  async setSslCert(path: string, pem: string, o: CallOptions = {}): Promise<void> {
    checkPath(path);
    const payload = sanitizePem(pem);
    return this.job(async (s) => void (await this.set(s, 'cert', path, payload, o)), o);
  }

  /** `commit ssl cert`: new handshakes get the certificate; existing connections keep theirs. */
  async commitSslCert(path: string, o: CallOptions = {}): Promise<void> {
    checkPath(path);
    return this.job((s) => this.commit(s, 'cert', path, o), o);
  }

  /** `abort ssl cert`. HaproxyNoTransactionError if none is open; TxnMismatch if it is another path's. */
  async abortSslCert(path: string, o: CallOptions = {}): Promise<void> {
    checkPath(path);
    return this.job((s) => this.abort(s, 'cert', path, o), o);
  }

  /** `del ssl cert`. HaproxyInUseError while a crt-list entry uses it, HaproxyNotFoundError if absent. */
  async delSslCert(path: string, o: CallOptions = {}): Promise<void> {
    checkPath(path);
    return this.job((s) => this.remove(s, 'cert', path, o), o);
  }

  /**
   * Creates (if missing), sets and commits a certificate as one unit: what a deploy needs. Checks
   * the path HAProxy names in every reply; a transaction another client left open on another path
   * is aborted and the set retried (see set()), so another path never gets our PEM committed and
   * a forgotten transaction never wedges the instance. A failed commit is aborted too (2.6 would
   * leave it open). "Locked" is retried with backoff.
   */
  async putCert(path: string, pem: string, o: CallOptions = {}): Promise<void> {
    checkPath(path);
    const payload = sanitizePem(pem);
    return this.job(async (s) => void (await this.put(s, 'cert', path, payload, o)), o);
  }

  /** `show ssl ca-file`: loaded CA files and the open CA-file transaction, if any. */
  async showSslCaFiles(o: CallOptions = {}): Promise<StoreListing> {
    return this.read('show ssl ca-file', o, parseCaFileList);
  }

  async newSslCaFile(path: string, o: CallOptions = {}): Promise<void> {
    checkPath(path);
    return this.job((s) => this.create(s, 'caFile', path, o), o);
  }

  /** `set ssl ca-file` (CA certificates, PEM). Same transaction rules as setSslCert. */
  async setSslCaFile(path: string, pem: string, o: CallOptions = {}): Promise<void> {
    checkPath(path);
    const payload = sanitizePem(pem, 'CA PEM');
    return this.job(async (s) => void (await this.set(s, 'caFile', path, payload, o)), o);
  }

  async commitSslCaFile(path: string, o: CallOptions = {}): Promise<void> {
    checkPath(path);
    return this.job((s) => this.commit(s, 'caFile', path, o), o);
  }

  async abortSslCaFile(path: string, o: CallOptions = {}): Promise<void> {
    checkPath(path);
    return this.job((s) => this.abort(s, 'caFile', path, o), o);
  }

  async delSslCaFile(path: string, o: CallOptions = {}): Promise<void> {
    checkPath(path);
    return this.job((s) => this.remove(s, 'caFile', path, o), o);
  }

  /**
   * Creates (if missing), sets and commits an in-memory CA file as one unit, so crt-list lines can
   * use `[verify required ca-file <path>]` (2.6 accepts only CA files created this way at runtime).
   */
  async putCaFile(path: string, pem: string, o: CallOptions = {}): Promise<void> {
    checkPath(path);
    const payload = sanitizePem(pem, 'CA PEM');
    return this.job(async (s) => void (await this.put(s, 'caFile', path, payload, o)), o);
  }

  /**
   * Adds one line to a crt-list, in the payload form: 2.6's one-line form answers Success but
   * drops options and SNI filters. HAProxy accepts duplicates: a second add adds a second line.
   */
  async addCrtListEntry(list: string, entry: CrtListLine, o: CallOptions = {}): Promise<void> {
    const add = crtListAdd(list, entry);
    return this.job(async (s) => add.check(await this.exec(s, add.command.line, add.command.payload, o)), o);
  }

  /**
   * putCert, then adds the certificate's crt-list line: a new certificate served in two round
   * trips (`new` + `set`, then `commit` + `add ssl crt-list`) instead of four. Nothing is added
   * unless the commit succeeded (HAProxy refuses a line for an uncommitted certificate).
   */
  async putCertAndListEntry(list: string, entry: CrtListLine, pem: string, o: CallOptions = {}): Promise<void> {
    const add = crtListAdd(list, entry);
    const payload = sanitizePem(pem);
    return this.job(async (s) => add.check((await this.put(s, 'cert', add.path, payload, o, add.command))!), o);
  }

  /**
   * Removes every line of `list` for `path` (HAProxy wants `path:line` when there are several) and
   * resolves with how many were removed. HaproxyNotFoundError if the list or the entry is absent.
   */
  async delCrtListEntry(list: string, path: string, o: CallOptions = {}): Promise<number> {
    checkPath(list, 'crt-list');
    checkPath(path);
    return this.job(async (s) => {
      const command = `del ssl crt-list ${list} ${path}`;
      const body = await this.exec(s, command, undefined, o);
      const lines = severalEntryLines(body);
      if (!lines) {
        expectReply(command, body, OK.delCrtList);
        return 1;
      }
      // Line numbers stay as they were at load/add time (2.6 doesn't renumber), so order is free.
      for (const n of lines) {
        const one = `del ssl crt-list ${list} ${path}:${n}`;
        expectReply(one, await this.exec(s, one, undefined, o), OK.delCrtList);
      }
      return lines.length;
    }, o);
  }

  /** `show ssl crt-list -n <list>`: lines with their numbers, options and SNI filters. */
  async showCrtList(list: string, o: CallOptions = {}): Promise<CrtListEntry[]> {
    return (await this.showCrtListSince(list, undefined, o)).value!;
  }

  /** `show ssl crt-list -n <list>`, parsed only when its reply differs from the one `since` digests. */
  async showCrtListSince(list: string, since: string | undefined, o: CallOptions = {}): Promise<Digested<CrtListEntry[]>> {
    return this.readSince(`show ssl crt-list -n ${checkPath(list, 'crt-list')}`, since, o, parseCrtList);
  }

  /**
   * `add map` with a payload: adds many `key value` entries in one command each ~maxCommandBytes
   * (one round trip instead of one per key). A key already present gets a second entry (use setMap to change one).
   */
  async addMapEntries(map: string, entries: readonly (readonly [string, string])[], o: CallOptions = {}): Promise<void> {
    const command = `add map ${checkPath(map, 'map')}`;
    const lines = entries.map(([k, v]) => `${checkMapWord(k, 'key')} ${checkMapWord(v, 'value')}\n`);
    // Room for the command line, the `<<` framing and the final empty line.
    const room = this.o.maxCommandBytes - Buffer.byteLength(command) - 8;
    const chunks: string[] = [];
    for (const line of lines) {
      const last = chunks.length - 1;
      if (last >= 0 && Buffer.byteLength(chunks[last]!) + Buffer.byteLength(line) <= room) chunks[last] += line;
      else chunks.push(line);
    }
    return this.job(async (s) => {
      for (const payload of chunks) expectReply(command, await this.exec(s, command, payload, o), OK.empty);
    }, o);
  }

  /** `set map`: changes an existing key's value; HaproxyNotFoundError if the key is absent. */
  async setMap(map: string, key: string, value: string, o: CallOptions = {}): Promise<void> {
    const command = `set map ${checkPath(map, 'map')} ${checkMapWord(key, 'key')} ${checkMapWord(value, 'value')}`;
    return this.job(async (s) => void expectReply(command, await this.exec(s, command, undefined, o), OK.empty), o);
  }

  /** `del map`: removes every entry of the key; HaproxyNotFoundError if there is none. */
  async delMap(map: string, key: string, o: CallOptions = {}): Promise<void> {
    const command = `del map ${checkPath(map, 'map')} ${checkMapWord(key, 'key')}`;
    return this.job(async (s) => void expectReply(command, await this.exec(s, command, undefined, o), OK.empty), o);
  }

  /** `show map <map>`. */
  async showMap(map: string, o: CallOptions = {}): Promise<MapEntry[]> {
    return (await this.showMapSince(map, undefined, o)).value!;
  }

  /** `show map <map>`, parsed only when its reply differs from the one `since` digests. */
  async showMapSince(map: string, since: string | undefined, o: CallOptions = {}): Promise<Digested<MapEntry[]>> {
    return this.readSince(`show map ${checkPath(map, 'map')}`, since, o, parseMap);
  }

  /**
   * Sends any command (escape hatch for tests and diagnostics) and resolves with HAProxy's reply
   * text. Only the framing is checked: the caller owns the line's content. Not retried.
   */
  async raw(line: string, payload?: string, o: CallOptions = {}): Promise<string> {
    return this.job((s) => {
      this.sent++;
      return s.execute(line, payload, this.execOptions(o));
    }, o);
  }

  /** Closes the session; calls made afterwards fail with HaproxyUnreachableError. Safe to repeat. */
  close(): void {
    this.closed = true;
    this.closing.abort(new HaproxyUnreachableError(`runtime client for ${formatRuntimeAddress(this.address)} is closed`));
    this.session?.destroy('client closed');
    this.session = undefined;
  }

  /**
   * new (if needed) + set + commit, with `new` and the first `set` in one write (new's answer —
   * created, or exists — changes nothing for set). `after`, if given, goes out with the commit
   * and its reply is returned: it must be a command that fails harmlessly if the commit did.
   */
  private async put(s: RuntimeSession, kind: StoreKind, path: string, payload: string, o: CallOptions, after?: SessionCommand): Promise<string | undefined> {
    const setLine = `set ${STORES[kind].noun} ${path}`;
    if (kind === 'cert' && after && !this.known.has(path)) return this.putNew(s, path, payload, after, o);
    let setReply: string | undefined;
    if (kind === 'caFile' || !this.known.has(path)) {
      const [created, set] = await this.execAll(s, [{ line: `new ${STORES[kind].noun} ${path}` }, { line: setLine, payload }], o);
      await this.create(s, kind, path, o, true, created);
      setReply = set;
    }
    for (let attempt = 0; ; attempt++) {
      let how: string;
      try {
        how = await this.set(s, kind, path, payload, o, setReply);
        setReply = undefined;
      } catch (err) {
        setReply = undefined;
        // Someone deleted it since we learnt it existed: create and set again, once.
        if (err instanceof HaproxyNotFoundError && attempt === 0) {
          await this.create(s, kind, path, o, true);
          continue;
        }
        throw err;
      }
      // "updated" for our path: a transaction on it was left open with other content; start over
      // from what is committed so nothing of that stale content is committed with ours.
      if (how === 'updated' && attempt < 2) {
        await this.abort(s, kind, path, o);
        continue;
      }
      if (how === 'updated') {
        await this.abortQuietly(s, kind, path, o);
        throw new HaproxyTxnMismatchError(`haproxy: \`set ${STORES[kind].noun} ${path}\`: a transaction on it keeps being reopened by another client; aborted`);
      }
      break;
    }
    if (!after) {
      await this.commit(s, kind, path, o);
      return undefined;
    }
    const [committed, afterReply] = await this.execAll(s, [{ line: `commit ${STORES[kind].noun} ${path}` }, after], o);
    await this.commit(s, kind, path, o, committed);
    return afterReply;
  }

  /**
   * put() for a certificate new to us (on-demand's case) in one write and one round trip: new,
   * abort, set, commit, `after`. The `abort` closes a transaction someone left open on this path,
   * so nothing of its content rides along with our commit; its reply (usually "No ongoing
   * transaction") is not checked. If `set` fails, or met a transaction open on another path,
   * `commit <path>` is refused by HAProxy and `after` finds the store empty (measured on 2.6 and
   * 3.x), so nothing is served; the replies are checked in order and the first failure is thrown.
   * When set() cleared another client's transaction and set again, commit and `after` go again.
   */
  private async putNew(s: RuntimeSession, path: string, payload: string, after: SessionCommand, o: CallOptions): Promise<string | undefined> {
    const commitLine = { line: `commit ssl cert ${path}` };
    let [created, , set, committed, afterReply] = await this.execAll(
      s,
      [{ line: `new ssl cert ${path}` }, { line: `abort ssl cert ${path}` }, { line: `set ssl cert ${path}`, payload }, commitLine, after],
      o,
    );
    await this.create(s, 'cert', path, o, true, created);
    const setFirstTime = STORES.cert.set.exec(set ?? '')?.[2] === path;
    await this.set(s, 'cert', path, payload, o, set);
    if (!setFirstTime) [committed, afterReply] = await this.execAll(s, [commitLine, after], o);
    await this.commit(s, 'cert', path, o, committed);
    return afterReply;
  }

  /**
   * `new`; with `existsOk`, an existing store is fine (HAProxy still has it: nothing to do).
   * `replied`: the reply, when the command already went out in a pipelined batch (so for set and commit).
   */
  private async create(s: RuntimeSession, kind: StoreKind, path: string, o: CallOptions, existsOk = false, replied?: string): Promise<void> {
    const command = `new ${STORES[kind].noun} ${path}`;
    try {
      const m = expectReply(command, replied ?? (await this.exec(s, command, undefined, o)), STORES[kind].created);
      if (m[1] !== path) throw replyError(command, `unexpected reply naming ${m[1]}`);
    } catch (err) {
      if (!(existsOk && err instanceof HaproxyExistsError)) throw err;
    }
    if (kind === 'cert') this.noteKnown('add', path);
  }

  /**
   * `set`, checking the path HAProxy names; resolves with "created" or "updated". A transaction
   * open on another path shows in two ways: 2.6.12 puts our PEM into it ("Transaction updated for
   * certificate <other>"), 3.x refuses ours ("The ongoing transaction is about '<other>'…").
   * Another client's is aborted and the set sent again (a forgotten one would otherwise block every
   * set of this instance until someone aborts it by hand); ours is never thrown away.
   */
  private async set(s: RuntimeSession, kind: StoreKind, path: string, payload: string, o: CallOptions, replied?: string): Promise<string> {
    const command = `set ${STORES[kind].noun} ${path}`;
    for (let attempt = 1; ; attempt++) {
      const body = (attempt === 1 ? replied : undefined) ?? (await this.exec(s, command, payload, o));
      if (/not referenced by the configuration/.test(body)) this.noteKnown('delete', path);
      const m = STORES[kind].set.exec(body);
      const named = m ? m[2]! : foreignTransaction(body);
      if (named === undefined) throw replyError(command, body);
      if (named === path) {
        this.ours[kind] = path;
        return m![1]!;
      }
      const ours = this.ours[kind] === named;
      // 2.6.12: `named` now holds our PEM, whoever opened it: never commit that.
      if (m || !ours) await this.abortQuietly(s, kind, named, o);
      runtimeChannel.publish({ event: ours ? 'txn-mismatch' : 'foreign-transaction-aborted', address: formatRuntimeAddress(this.address), kind, path, named });
      if (ours) {
        throw new HaproxyTxnMismatchError(
          `haproxy: \`${command}\`: our own transaction on ${named} is still open; commit or abort it first` + (m ? ' (2.6.12 put this PEM into it: it was aborted)' : ''),
        );
      }
      if (attempt >= 3) {
        throw new HaproxyTxnMismatchError(`haproxy: \`${command}\`: another client keeps opening transactions (last on ${named}); each was aborted, nothing was committed — retry`);
      }
    }
  }

  private async commit(s: RuntimeSession, kind: StoreKind, path: string, o: CallOptions, replied?: string): Promise<void> {
    const command = `commit ${STORES[kind].noun} ${path}`;
    const body = replied ?? (await this.exec(s, command, undefined, o));
    const m = OK.commit.exec(body);
    // The dots after the path are progress, so a path ending in dots is compared without them.
    if (m && m[1] === path.replace(/\.+$/, '')) {
      if (this.ours[kind] === path) delete this.ours[kind];
      return;
    }
    const err = m ? replyError(command, `unexpected reply naming ${m[1]}`) : replyError(command, body);
    // 2.6 keeps a transaction open after a failed commit; close it so it can't capture later sets.
    // A refusal naming our own open transaction on another path leaves that one alone.
    const foreign = foreignTransaction(body);
    if (!(err instanceof HaproxyLockedError || err instanceof HaproxyNoTransactionError) && (foreign === undefined || foreign !== this.ours[kind])) {
      await this.abortQuietly(s, kind, foreign ?? path, o);
    }
    throw err;
  }

  private async abort(s: RuntimeSession, kind: StoreKind, path: string, o: CallOptions): Promise<void> {
    const command = `abort ${STORES[kind].noun} ${path}`;
    const body = await this.exec(s, command, undefined, o);
    if (this.ours[kind] === path && (OK.abort.test(body) || /No ongoing transaction!/.test(body))) delete this.ours[kind];
    const m = expectReply(command, body, OK.abort);
    if (m[1] !== path) throw replyError(command, `unexpected reply naming ${m[1]}`);
  }

  /** Best-effort abort while another error is being reported: the session stays usable. */
  private async abortQuietly(s: RuntimeSession, kind: StoreKind, path: string, o: CallOptions): Promise<void> {
    try {
      await this.abort(s, kind, path, o);
    } catch (err) {
      if (err instanceof HaproxyUnreachableError) throw err;
    }
  }

  private async remove(s: RuntimeSession, kind: StoreKind, path: string, o: CallOptions): Promise<void> {
    const command = `del ${STORES[kind].noun} ${path}`;
    const body = await this.exec(s, command, undefined, o);
    if (kind === 'cert' && /doesn't exist!/.test(body)) this.noteKnown('delete', path);
    const m = expectReply(command, body, STORES[kind].deleted);
    if (m[1] !== path) throw replyError(command, `unexpected reply naming ${m[1]}`);
    if (kind === 'cert') this.noteKnown('delete', path);
  }

  /**
   * Sends commands in one write (see RuntimeSession.executeAll). From the first reply that says
   * "currently locked" on, they are sent again one by one with the usual locked retries: each
   * later one also ran against the lock, and commands are only pipelined where that is harmless.
   */
  private async execAll(s: RuntimeSession, commands: SessionCommand[], o: CallOptions): Promise<string[]> {
    const replies = await s.executeAll(commands, this.execOptions(o));
    this.sent += commands.length;
    const locked = replies.findIndex(isLocked);
    if (locked < 0 || this.o.lockedRetries === 0) return replies;
    runtimeChannel.publish({ event: 'locked-retry', address: formatRuntimeAddress(this.address), command: commands[locked]!.line, attempt: 0 });
    await sleep(this.o.lockedDelayMs, o.signal);
    for (let i = locked; i < commands.length; i++) replies[i] = await this.exec(s, commands[i]!.line, commands[i]!.payload, o);
    return replies;
  }

  /** Sends a command, retrying with backoff while HAProxy answers "currently locked". */
  private async exec(s: RuntimeSession, line: string, payload: string | undefined, o: CallOptions): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      const body = await s.execute(line, payload, this.execOptions(o));
      this.sent++;
      if (!isLocked(body) || attempt >= this.o.lockedRetries) return body;
      runtimeChannel.publish({ event: 'locked-retry', address: formatRuntimeAddress(this.address), command: line, attempt });
      await sleep(Math.min(this.o.lockedDelayMs * 2 ** attempt, 1_000), o.signal);
    }
  }

  /** A `show` command, retried once on a fresh session if the connection dropped (it is read-only). */
  private read<T>(command: string, o: CallOptions, parse: (body: string) => T): Promise<T> {
    return this.job(async (s) => parse(await this.show(s, command, o)), o, true);
  }

  /**
   * A `show` command whose reply is parsed only when its digest differs from `since` (or `reuse`
   * says the last parse's side effects are stale). The digest is taken of a reply `show` accepted,
   * so an error or a refusal is never taken for an unchanged listing.
   */
  private readSince<T>(command: string, since: string | undefined, o: CallOptions, parse: (body: string) => T, reuse: () => boolean = () => true): Promise<Digested<T>> {
    return this.job(async (s) => {
      const body = await this.show(s, command, o);
      const digest = `${body.length}:${createHash('sha1').update(body).digest('base64')}`;
      return digest === since && reuse() ? { digest } : { digest, value: parse(body) };
    }, o, true);
  }

  private noteKnown(change: 'add' | 'delete', path: string): void {
    if (change === 'add') this.known.add(path);
    else this.known.delete(path);
    this.knownEdited = true;
  }

  /** Runs a `show` command; its known refusals become typed errors, anything else is the listing. */
  private async show(s: RuntimeSession, command: string, o: CallOptions): Promise<string> {
    const body = await this.exec(s, command, undefined, o);
    const err = showError(command, body);
    if (err) throw err;
    return body;
  }

  private job<T>(fn: (s: RuntimeSession) => Promise<T>, o: CallOptions, idempotent = false): Promise<T> {
    return this.queue.run(async () => {
      for (let attempt = 0; ; attempt++) {
        const s = await this.ensureSession(o);
        try {
          return await fn(s);
        } catch (err) {
          if (!(idempotent && attempt === 0 && err instanceof HaproxyUnreachableError && s.closed && !o.signal?.aborted)) throw err;
        }
      }
    }, o.signal);
  }

  private async ensureSession(o: CallOptions): Promise<RuntimeSession> {
    if (this.closed) throw new HaproxyUnreachableError(`runtime client for ${formatRuntimeAddress(this.address)} is closed`);
    const current = this.session;
    if (current && !current.closed && performance.now() - current.lastUsed < this.o.idleTimeoutMs) return current;
    current?.destroy('idle session replaced');
    this.session = undefined;
    let last: unknown;
    // A close() meanwhile ends the attempts at once (a daemon stopping with an HAProxy that hangs).
    const signal = o.signal ? AbortSignal.any([o.signal, this.closing.signal]) : this.closing.signal;
    for (let attempt = 0; attempt < this.o.connectAttempts; attempt++) {
      if (attempt > 0) await sleep(this.o.reconnectDelayMs * 2 ** (attempt - 1), signal);
      let fresh: RuntimeSession | undefined;
      try {
        fresh = await RuntimeSession.open(this.address, {
          connectTimeoutMs: this.o.connectTimeoutMs,
          commandTimeoutMs: this.o.commandTimeoutMs,
          maxCommandBytes: this.o.maxCommandBytes,
          signal,
        });
        await this.prepare(fresh, { ...o, signal });
        runtimeChannel.publish({ event: 'connect', address: formatRuntimeAddress(this.address) });
        this.session = fresh;
        return fresh;
      } catch (err) {
        fresh?.destroy('session setup failed');
        if (!(err instanceof HaproxyUnreachableError) || signal.aborted) throw err;
        last = err;
      }
    }
    throw last;
  }

  /** Per-session setup: a CLI timeout longer than our idle limit, then stale-transaction cleanup. */
  private async prepare(s: RuntimeSession, o: CallOptions): Promise<void> {
    // Ignored if refused (older versions, lower levels): the idle limit still recycles sessions.
    await s.execute(`set timeout cli ${Math.ceil((this.o.idleTimeoutMs * 2) / 1000)}`, undefined, this.execOptions(o));
    this.sent++;
    if (!this.o.abortStaleTransactions) {
      this.known.clear();
      this.knownEdited = true;
      return;
    }
    const certs = parseSslCertList(await this.show(s, 'show ssl cert', o));
    this.known = new Set(certs.certs);
    this.knownEdited = false;
    const cas = parseCaFileList(await this.show(s, 'show ssl ca-file', o));
    for (const [kind, stale] of [['cert', certs.transaction], ['caFile', cas.transaction]] as const) {
      if (stale === undefined) continue;
      await this.abortQuietly(s, kind, stale, o);
      runtimeChannel.publish({ event: 'stale-transaction-aborted', address: formatRuntimeAddress(this.address), kind, path: stale });
    }
    // None is open now (or the worker is new): nothing on another path is ours any more.
    delete this.ours.cert;
    delete this.ours.caFile;
  }

  private execOptions(o: CallOptions) {
    return { timeoutMs: o.timeoutMs ?? this.o.commandTimeoutMs, signal: o.signal };
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * `add ssl crt-list` for one line, checked before anything is sent, and the check of its reply.
 * The payload is the crt-list file's line for the same entry (formatCrtListLine renders both).
 */
export function crtListAdd(list: string, entry: CrtListLine): { path: string; command: SessionCommand; check: (reply: string) => void } {
  checkPath(list, 'crt-list');
  const line = formatCrtListLine(entry);
  const path = entry.path;
  const command = `add ssl crt-list ${list}`;
  return {
    path,
    command: { line: command, payload: line },
    check(reply) {
      const m = expectReply(command, reply, OK.addCrtList);
      if (m[1] !== path || m[2] !== list) throw replyError(command, `unexpected reply naming ${m[1]} in ${m[2]}`);
    },
  };
}
