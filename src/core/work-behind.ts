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

  /** Resolves once nothing tracked is running (work tracked meanwhile included). */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running]);
  }
}
