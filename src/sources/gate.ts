import { createHash } from 'node:crypto';
import { SerialQueue } from '../core/async.js';
import { parseBundle } from '../core/bundle.js';
import { errorCode } from '../core/errors.js';
import type { SourceSink } from './source.js';

/**
 * What an offer led to. `retry`: valid, but the sink's put failed — nothing was recorded, so a
 * caller that skips unchanged content (HTTP validators) must fetch it in full next time.
 */
export type Offer = 'put' | 'unchanged' | 'rejected' | 'retry';

interface KeyState {
  /** Hash of the raw text last looked at: the same bytes are never parsed or reported twice. */
  raw?: string;
  /** Hash of the last bundle handed to `put` (normalized PEM), undefined until one was. */
  good?: string;
  /** Why the raw text was refused (undefined: it was good). */
  rawVerdict?: string;
  /** Code and message of the last report, so a failure that persists is reported once. */
  reported?: string;
}

/**
 * Stands between a source and its sink: validates with parseBundle before anything reaches
 * `put`, keeps a fingerprint per key so unchanged content (even re-fetched or re-read) is a
 * no-op, and reports a persisting failure once instead of at every pass. Sink calls are made one
 * at a time even when offers for different keys overlap (SourceSink's promise).
 * Not safe for concurrent calls on the same key; calls for different keys may overlap.
 */
export class BundleGate {
  private readonly state = new Map<string, KeyState>();
  /** Sink calls, one at a time. */
  private readonly sinkCalls = new SerialQueue();

  constructor(private readonly sink: SourceSink) {}

  /**
   * Offers what `key` holds now: a combined PEM in `certText`, or cert chain + key apart.
   * If the sink's `put` throws, the error is reported and nothing is recorded: the next offer of
   * the same text tries again (`retry`).
   */
  async offer(key: string, certText: string, keyText = ''): Promise<Offer> {
    const st = this.stateOf(key);
    const raw = sha256(`${certText}\0${keyText}`);
    if (st.raw === raw) {
      this.unchanged(key);
      return 'unchanged';
    }
    let bundle: ReturnType<typeof parseBundle>;
    try {
      bundle = parseBundle(certText, keyText);
    } catch (err) {
      this.report(key, st, err as Error);
      st.raw = raw;
      st.rawVerdict = st.reported;
      return 'rejected';
    }
    // Re-encoded PEM: whitespace or line-ending changes alone are not a new certificate.
    const good = sha256(`${bundle.certPem}\0${bundle.keyPem}`);
    const changed = st.good !== good;
    if (changed) {
      try {
        await this.sinkCalls.run(() => this.sink.put(key, bundle.certPem, bundle.keyPem));
      } catch (err) {
        this.report(key, st, err as Error);
        return 'retry';
      }
      st.good = good;
    }
    st.raw = raw;
    st.rawVerdict = undefined;
    st.reported = undefined;
    return changed ? 'put' : 'unchanged';
  }

  /**
   * `key` still holds what was last offered (an HTTP 304, the same bytes read again): a read
   * failure reported since is over, and reported again if it comes back.
   */
  unchanged(key: string): void {
    const st = this.state.get(key);
    if (st) st.reported = st.rawVerdict;
  }

  /** `key` could not be read (nothing to parse): reported unless it is the same failure as last time. */
  fail(key: string, error: Error): void {
    this.report(key, this.stateOf(key), error);
  }

  /**
   * `key` is gone: the sink drops it if it ever received a bundle from it, then the key is
   * forgotten. If the sink's drop throws, the error is reported, the key is kept and false is
   * returned, so the caller tries again later.
   */
  async drop(key: string): Promise<boolean> {
    const st = this.state.get(key);
    if (st?.good !== undefined) {
      try {
        await this.sinkCalls.run(() => this.sink.drop(key));
      } catch (err) {
        this.report(key, st, err as Error);
        return false;
      }
    }
    this.state.delete(key);
    return true;
  }

  /** Keys seen so far (good or broken). */
  keys(): string[] {
    return [...this.state.keys()];
  }

  private stateOf(key: string): KeyState {
    let st = this.state.get(key);
    if (!st) this.state.set(key, (st = {}));
    return st;
  }

  private report(key: string, st: KeyState, error: Error): void {
    const signature = `${errorCode(error) ?? error.name}\0${error.message}`;
    if (st.reported === signature) return;
    st.reported = signature;
    this.sink.reject(key, error);
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
