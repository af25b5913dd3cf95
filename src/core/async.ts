/**
 * The async helpers, in one place (CertMagic's async.go): waits that honour an AbortSignal, bounds
 * on a wait, serial and keyed queues, single-flight, coalescing, bounded for-each and work left
 * running behind an answer. Everything else imports these instead of writing its own.
 */

/** The reason an aborted signal carries, as the error to reject with. */
function reasonOf(signal: AbortSignal): Error {
  return signal.reason as Error;
}

export interface SleepOptions {
  /** Do not keep the process alive for this wait (a stopping daemon must not wait it out). */
  unref?: boolean;
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal, opts: SleepOptions = {}): Promise<void> {
  if (signal?.aborted) return Promise.reject(reasonOf(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(reasonOf(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (opts.unref) timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Settles with `promise`, or rejects with the signal's reason as soon as it aborts. */
export function untilAborted<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(reasonOf(signal));
  return abortable(promise, signal, () => true);
}

/**
 * Settles with `promise`, or rejects with the signal's reason when it aborts and `rejectNow`
 * agrees; the listener goes once `promise` settles.
 */
function abortable<T>(promise: Promise<T>, signal: AbortSignal, rejectNow: () => boolean): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      if (rejectNow()) reject(reasonOf(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err as Error);
      },
    );
  });
}

/**
 * Settles with `promise` if it settles within `ms`; else with what `onTimeout` returns (or
 * rejects with what it throws). The timer is cleared either way; `promise` itself goes on.
 */
export function withTimeout<T, U = never>(promise: Promise<T>, ms: number, onTimeout: () => U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<U>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(onTimeout());
      } catch (err) {
        reject(err as Error);
      }
    }, ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * Runs jobs one at a time, in call order. A failing job doesn't stop the queue. A job whose
 * signal aborts while it still waits is rejected at once and never starts; once started, the job
 * itself must honour the signal. Safe to call concurrently: that is its purpose.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private count = 0;

  /** Jobs queued or running. */
  get size(): number {
    return this.count;
  }

  run<T>(job: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(reasonOf(signal));
    this.count++;
    let state: 'waiting' | 'started' | 'skipped' = 'waiting';
    const start = (): Promise<T> => {
      if (state === 'skipped') return Promise.resolve(undefined as T);
      state = 'started';
      return job();
    };
    const result = this.tail.then(start, start).finally(() => this.count--);
    this.tail = result.catch(() => undefined);
    if (!signal) return result;
    // Only a job still waiting is given up; a started one must honour the signal itself.
    return abortable(result, signal, () => {
      if (state !== 'waiting') return false;
      state = 'skipped';
      return true;
    });
  }
}

/**
 * One SerialQueue per key: jobs for the same key run one at a time in call order, jobs for
 * different keys side by side. A key's queue is dropped once it is empty. Safe to call concurrently.
 */
export class KeyedQueue<K> {
  private readonly queues = new Map<K, { queue: SerialQueue; jobs: number }>();

  run<T>(key: K, job: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    let entry = this.queues.get(key);
    if (!entry) this.queues.set(key, (entry = { queue: new SerialQueue(), jobs: 0 }));
    const e = entry;
    e.jobs++;
    const done = () => {
      if (--e.jobs === 0 && this.queues.get(key) === e) this.queues.delete(key);
    };
    const result = e.queue.run(job, signal);
    result.then(done, done);
    return result;
  }

  /** Keys with a job queued or running. */
  get size(): number {
    return this.queues.size;
  }
}

/**
 * Concurrent calls for one key share the first call's promise (per-name single-flight inside one
 * daemon; the store lock covers several daemons). Safe to call concurrently.
 */
export class SingleFlight<T> {
  private readonly inflight = new Map<string, Promise<T>>();

  run(key: string, fn: () => Promise<T>): Promise<T> {
    const current = this.inflight.get(key);
    if (current) return current;
    const p = fn().finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  get size(): number {
    return this.inflight.size;
  }
}

/**
 * Runs an async job so that callers arriving while it runs share ONE follow-up run instead of
 * queueing one each (e.g. 20 concurrent issues → the crt-list file is rewritten twice, not 20
 * times). Every caller's promise settles after a run that started after its call.
 * Safe to call concurrently.
 */
export function coalesced(job: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let next: Promise<void> | undefined;
  const start = (): Promise<void> => {
    running = job().finally(() => {
      running = undefined;
    });
    return running;
  };
  return function runCoalesced() {
    if (!running) return start();
    // The follow-up starts only after the current run; callers joining it are covered because
    // `next` is cleared the moment it starts.
    const followUp = (): Promise<void> => {
      next = undefined;
      return start();
    };
    next ??= running.then(followUp, followUp);
    return next;
  };
}

/** Runs `fn` over `items` with at most `limit` calls in flight; rejects on the first failure. */
export async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Work left running behind an answer (files and store writes after an on-demand handshake was
 * answered): a stop waits for it, so nothing is written after the daemon said it stopped. The
 * work handles its own errors; a rejection here is only waited for.
 */
export class WorkBehind {
  private readonly running = new Set<Promise<void>>();

  track(work: Promise<unknown>): void {
    const done: Promise<void> = work.then(
      () => undefined,
      () => undefined,
    );
    this.running.add(done);
    void done.then(() => this.running.delete(done));
  }

  /**
   * Runs `job` once `answered` settles, from a later turn of the event loop: whatever `answered`
   * resolves for (a handshake's answer) is written first, and the job's synchronous start (file
   * rendering, JSON) does not delay it: ~0.45 ms per on-demand answer, measured. (A longer pause
   * only moves the job onto the next handshake's path.)
   */
  after(answered: Promise<unknown>, job: () => Promise<unknown>): void {
    const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
    this.track(answered.then(nextTurn, nextTurn).then(job));
  }

  /** Resolves once nothing tracked is running (work tracked meanwhile included). */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running]);
  }
}
