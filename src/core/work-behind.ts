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
