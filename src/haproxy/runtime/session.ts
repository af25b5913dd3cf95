import { connect, type Socket } from 'node:net';
import {
  HaproxyCommandError,
  HaproxyTimeoutError,
  HaproxyUnreachableError,
  InvalidNameError,
} from '../../core/errors.js';
import { formatRuntimeAddress, type RuntimeAddress } from './address.js';

export interface ExecuteOptions {
  /** Bound on waiting for this reply (default: the session's commandTimeoutMs). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * May go out while earlier calls' replies are still coming (their replies come first): a caller
   * streaming batches keeps HAProxy busy instead of idle during each round trip.
   */
  behind?: boolean;
}

export interface SessionOptions {
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  /**
   * Largest command (line + payload + framing) we send. HAProxy 2.6.12 reads a command into one
   * buffer of `tune.bufsize` (16384): a longer one makes it drop the connection, and one of exactly
   * that size spins the CLI applet until the watchdog kills the worker (measured here). Stay below.
   */
  maxCommandBytes?: number;
  signal?: AbortSignal;
}

const PROMPT = '\n> ';
const DEFAULTS = { connectTimeoutMs: 2_000, commandTimeoutMs: 15_000, maxCommandBytes: 16_000 };
/** A reply this large means we lost the framing; give up rather than buffer without end. */
const MAX_REPLY_CHARS = 256 * 1024 * 1024;

interface Pending {
  command: string;
  resolve: (body: string) => void;
  reject: (err: Error) => void;
}

/** One command of a pipelined batch: a line and an optional payload. */
export interface SessionCommand {
  line: string;
  payload?: string;
}

/**
 * One connection to an HAProxy runtime API in `prompt` mode: each reply ends at the `\n> ` prompt,
 * so the connection carries many commands. One call in flight (`execute`, or `executeAll` for a
 * pipelined batch whose replies come back in order): a second concurrent call is a programming
 * error and throws (callers serialize — see RuntimeClient), unless it says `behind` (a stream of
 * batches: its replies come after the earlier calls', in order). A timeout, an abort or a close while
 * waiting destroys the session, since the stream can't be resynchronized.
 */
export class RuntimeSession {
  readonly address: RuntimeAddress;
  private readonly socket: Socket;
  private readonly o: typeof DEFAULTS;
  /** Commands sent and not yet answered, oldest first. */
  private queue: Pending[] = [];
  /**
   * The reply under way, as the chunks received (none holds a prompt), and the end of the last
   * one (a prompt may straddle two chunks). Kept apart and joined once: appending each chunk to one
   * string and searching it made V8 flatten the whole reply per chunk (a 6 MB `show ssl cert` of
   * 100,000 certificates in 16 KB chunks: ~830 ms; joined once: ~8 ms).
   */
  private chunks: string[] = [];
  private chunkChars = 0;
  private tail = '';
  private ended = false;
  private endReason?: HaproxyUnreachableError;
  private closeListeners: (() => void)[] = [];
  /** performance.now() of the last reply: the client recycles sessions idle too long. */
  lastUsed = performance.now();

  private constructor(address: RuntimeAddress, socket: Socket, o: typeof DEFAULTS) {
    this.address = address;
    this.socket = socket;
    this.o = o;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.end(unreachable(address, `connection failed: ${err.message}`, err)));
    socket.on('close', () => this.end(unreachable(address, 'HAProxy closed the connection')));
  }

  /**
   * Connects and switches to prompt mode. Throws HaproxyUnreachableError when nothing answers
   * within connectTimeoutMs (refused, missing socket, timeout).
   */
  static async open(address: RuntimeAddress, options: SessionOptions = {}): Promise<RuntimeSession> {
    const { signal, ...rest } = options;
    const o = { ...DEFAULTS, ...stripUndefined(rest) };
    signal?.throwIfAborted();
    const socket = address.kind === 'unix' ? connect({ path: address.path }) : connect({ host: address.host, port: address.port });
    // Listeners go on before the first tick, so an early error can't go unhandled.
    const session = new RuntimeSession(address, socket, o);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => session.fail(unreachable(address, `no connection within ${o.connectTimeoutMs} ms`)), o.connectTimeoutMs);
      const onAbort = () => session.fail(signal!.reason as Error);
      const settle = (err?: Error) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      socket.once('connect', () => settle());
      session.onClose(() => settle(signal?.aborted ? (signal.reason as Error) : session.endReason));
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await session.send(['prompt'], 'prompt\n', { timeoutMs: o.connectTimeoutMs, signal });
    } catch (err) {
      session.destroy();
      throw err instanceof HaproxyTimeoutError ? unreachable(address, `no prompt within ${o.connectTimeoutMs} ms`, err) : err;
    }
    return session;
  }

  /** True once the connection is gone; the session can't be used again. */
  get closed(): boolean {
    return this.ended;
  }

  /**
   * Sends one command line, with an optional payload framed as `line <<\n payload \n\n`, and
   * resolves with the reply text (payload echo and prompt removed, trailing newlines trimmed).
   * The line must be a single line; the payload must not contain an empty line (it would end the
   * payload early and the rest would run as commands). Callers validate arguments; these checks
   * only keep the framing intact.
   */
  execute(line: string, payload?: string, opts: ExecuteOptions = {}): Promise<string> {
    return this.executeAll([{ line, payload }], opts).then((replies) => replies[0]!);
  }

  /**
   * Sends several commands in one write and resolves with their replies in order. HAProxy runs
   * them one after the other as if sent one by one, minus the round trips; so pipeline only
   * commands whose outcome does not change what the next one should be. Each is checked as
   * `execute` checks it; one refused refuses the batch before anything is sent.
   */
  executeAll(commands: readonly SessionCommand[], opts: ExecuteOptions = {}): Promise<string[]> {
    const texts: string[] = [];
    for (const { line, payload } of commands) {
      const text = frame(line, payload, this.o.maxCommandBytes);
      if (text instanceof Error) return Promise.reject(text);
      texts.push(text);
    }
    return this.send(commands.map((c) => c.line), texts.join(''), opts);
  }

  /** Closes the connection; a command in flight fails with HaproxyUnreachableError. */
  destroy(reason = 'session closed by the client'): void {
    this.fail(unreachable(this.address, reason));
  }

  /** Called once when the connection ends, for whatever reason. */
  onClose(listener: () => void): void {
    if (this.ended) listener();
    else this.closeListeners.push(listener);
  }

  private send(commands: string[], text: string, opts: ExecuteOptions): Promise<string[]> {
    if (this.ended) return Promise.reject(this.endReason!);
    if (this.queue.length > 0 && !opts.behind) {
      return Promise.reject(new HaproxyCommandError(`\`${commands[0]}\` sent while \`${this.queue[0]!.command}\` is in flight: one call per session`));
    }
    if (opts.signal?.aborted) return Promise.reject(opts.signal.reason as Error);
    const timeoutMs = opts.timeoutMs ?? this.o.commandTimeoutMs;
    return new Promise<string[]>((resolve, reject) => {
      const replies: string[] = [];
      const timer = setTimeout(() => {
        const waiting = this.queue[0]?.command ?? commands[commands.length - 1];
        this.fail(new HaproxyTimeoutError(`haproxy at ${formatRuntimeAddress(this.address)}: no reply to \`${waiting}\` within ${timeoutMs} ms; the session was closed`));
      }, timeoutMs);
      const onAbort = () => this.fail(opts.signal!.reason as Error);
      const done = () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      for (const [i, command] of commands.entries()) {
        const last = i === commands.length - 1;
        this.queue.push({
          command,
          resolve: (body) => {
            replies.push(body);
            if (!last) return;
            done();
            this.lastUsed = performance.now();
            resolve(replies);
          },
          reject: (err) => {
            done();
            reject(err);
          },
        });
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.socket.write(text);
    });
  }

  private onData(chunk: string): void {
    if (this.queue.length === 0) {
      // Nothing was asked: HAProxy and we disagree on the framing. Don't guess.
      this.destroy('unexpected data from HAProxy between commands');
      return;
    }
    let rest = chunk;
    // A reply ends at the prompt: HAProxy writes it after each command, then the next reply.
    for (;;) {
      const window = this.tail + rest;
      const at = window.indexOf(PROMPT);
      if (at < 0) {
        this.chunks.push(rest);
        this.chunkChars += rest.length;
        if (this.chunkChars > MAX_REPLY_CHARS) {
          this.destroy(`reply to \`${this.queue[0]!.command}\` exceeds ${MAX_REPLY_CHARS} characters`);
          return;
        }
        this.tail = window.slice(-(PROMPT.length - 1));
        return;
      }
      // Just past the prompt, in `rest` (the tail alone never holds a whole prompt: it was searched).
      const end = at + PROMPT.length - this.tail.length;
      this.chunks.push(rest.slice(0, end));
      const raw = this.chunks.join('');
      this.chunks = [];
      this.chunkChars = 0;
      this.tail = '';
      rest = rest.slice(end);
      const p = this.queue.shift()!;
      p.resolve(replyBody(raw));
      if (this.queue.length === 0) {
        if (rest !== '') this.destroy('unexpected data from HAProxy after the last reply');
        return;
      }
      if (rest === '') return;
    }
  }

  /** Ends the session with `reason` for the command in flight (if any), and closes the socket. */
  private fail(reason: Error): void {
    this.end(reason);
    this.socket.destroy();
  }

  private end(reason: Error): void {
    if (this.ended) return;
    this.ended = true;
    // Later calls learn only that the session is gone; the specific reason went to the caller.
    this.endReason =
      reason instanceof HaproxyUnreachableError ? reason : unreachable(this.address, 'session closed after an earlier failure', reason);
    // Every command still waiting learns why (one call's promise settles once, on the first).
    for (const p of this.queue.splice(0)) p.reject(reason);
    for (const l of this.closeListeners.splice(0)) l();
  }
}

/**
 * Strips the framing from a prompt-mode reply: the `+ ` HAProxy prints for each payload line it
 * reads, the final prompt, and the blank line before it.
 */
export function replyBody(raw: string): string {
  let end = raw.endsWith(PROMPT) ? raw.length - PROMPT.length + 1 : raw.length;
  // Not /\n+$/: a regex tries it at every newline of a listing (100,000 lines at scale).
  while (end > 0 && raw.charCodeAt(end - 1) === 10) end--;
  return raw.slice(0, end).replace(/^(?:\+ )+/, '');
}

function unreachable(address: RuntimeAddress, why: string, cause?: unknown): HaproxyUnreachableError {
  return new HaproxyUnreachableError(
    `haproxy at ${formatRuntimeAddress(address)}: ${why} — is HAProxy running with this stats socket at level admin?`,
    { cause },
  );
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** `line\n`, or `line <<\n payload \n\n`; an Error when it would break the framing or the size cap. */
function frame(line: string, payload: string | undefined, maxBytes: number): string | Error {
  if (/[\r\n]/.test(line) || line.trim() === '') {
    return new InvalidNameError('refused before sending: a runtime command must be one non-empty line');
  }
  let text = `${line}\n`;
  if (payload !== undefined) {
    const body = payload.endsWith('\n') ? payload : `${payload}\n`;
    if (/\r|^\n|\n\n/.test(body)) {
      return new InvalidNameError(`refused before sending \`${line}\`: the payload has an empty line or a CR`);
    }
    text = `${line} <<\n${body}\n`;
  }
  const bytes = Buffer.byteLength(text);
  if (bytes > maxBytes) {
    return new HaproxyCommandError(
      `refused before sending \`${line}\`: ${bytes} bytes exceed ${maxBytes}; HAProxy reads a command into one ` +
        'tune.bufsize buffer (16384 by default) and 2.6 drops or crashes on larger ones: shorten the chain or raise tune.bufsize and maxCommandBytes',
    );
  }
  return text;
}
