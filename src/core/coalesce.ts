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
