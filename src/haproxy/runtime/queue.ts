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
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
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
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        if (state !== 'waiting') return;
        state = 'skipped';
        reject(signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      result.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(e as Error);
        },
      );
    });
  }
}
