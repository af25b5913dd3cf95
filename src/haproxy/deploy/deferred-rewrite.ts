import { coalesced } from '../../core/async.js';

export interface DeferredRewriteOptions {
  /** Least wait between a change and its rewrite (changes arriving meanwhile share it). */
  minDelayMs: number;
  /** Most wait: the staleness bound of the file, plus one write's duration. */
  maxDelayMs: number;
  /** The wait is this many times the last write's duration, between the two bounds. */
  delayFactor: number;
  /** A rewrite that failed in the background (it is tried again at the next change or flush). */
  onError: (err: unknown) => void;
}

/**
 * A whole-file rewrite (the crt-list, known.map) taken off the callers' path: `mark()` asks for
 * one within the staleness bound and returns at once; every change marked meanwhile shares it.
 * The wait grows with the last write's duration, so rewrites take at most 1/(1 + delayFactor) of
 * the time however fast changes come: at 100,000 certificates one rewrite costs tens of ms, and a
 * single change no longer waits for it. The file is written atomically by `write`, which reads the
 * state it renders when it starts. Safe to call concurrently.
 */
export class DeferredRewrite {
  private timer?: NodeJS.Timeout;
  private dirty = false;
  private lastWriteMs = 0;
  private inFlight: Promise<void> = Promise.resolve();
  private readonly run: () => Promise<void>;

  constructor(
    write: () => Promise<void>,
    private readonly o: DeferredRewriteOptions,
  ) {
    this.run = coalesced(async () => {
      this.dirty = false;
      const started = performance.now();
      try {
        await write();
      } catch (err) {
        this.dirty = true;
        throw err;
      } finally {
        this.lastWriteMs = performance.now() - started;
      }
    });
  }

  /** A change to write: the rewrite starts within the current delay. */
  mark(): void {
    this.dirty = true;
    if (this.timer) return;
    const delay = Math.min(this.o.maxDelayMs, Math.max(this.o.minDelayMs, this.lastWriteMs * this.o.delayFactor));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.start().catch((err: unknown) => {
        this.o.onError(err);
        // Still dirty: tried again after the longest wait (a full disk does not loop).
        this.timer ??= setTimeout(() => {
          this.timer = undefined;
          this.start().catch(this.o.onError);
        }, this.o.maxDelayMs);
      });
    }, delay);
    this.timer.unref();
  }

  /** Writes now whatever was marked, and resolves once everything marked before the call is on disk. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
    // Marked meanwhile, or the write in flight failed: write (and throw) here.
    if (this.dirty) await this.start();
  }

  /** True while a marked change is not written yet. */
  get pending(): boolean {
    return this.dirty;
  }

  private start(): Promise<void> {
    const p = this.run();
    this.inFlight = p.catch(() => undefined);
    return p;
  }
}
