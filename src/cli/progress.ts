/** Where progress goes: a terminal gets one line redrawn in place, anything else plain lines. */
export interface ProgressStream {
  isTTY?: boolean;
  /** A terminal's width: the counter line is cut to it, or it would wrap and not be redrawn. */
  columns?: number;
  write(text: string): unknown;
}

/**
 * `312/898` for long work. On a terminal the counter line is overwritten in place and lines that
 * must stay (failures) are printed above it; elsewhere (a pipe, a log, --json's stderr) every
 * step is its own plain line, so a log keeps each certificate's outcome.
 */
export class Progress {
  private shown = false;

  constructor(private readonly out: ProgressStream) {}

  get inPlace(): boolean {
    return this.out.isTTY === true;
  }

  /** One step done: `text` says what it came to. */
  step(done: number, total: number, text: string): void {
    const counter = `${done}/${total}`;
    if (!this.inPlace) {
      this.out.write(`${counter} ${text}\n`);
      return;
    }
    const line = `${counter} ${text}`;
    const width = this.out.columns || 80; // 0 on a terminal that reports no size
    this.out.write(`\r\x1b[K${line.length < width ? line : `${line.slice(0, width - 2)}…`}`);
    this.shown = true;
  }

  /** A line that stays, above the counter on a terminal. */
  keep(line: string): void {
    this.clear();
    this.out.write(`${line}\n`);
  }

  /** Removes the counter line (before the summary). */
  clear(): void {
    if (this.shown) this.out.write('\r\x1b[K');
    this.shown = false;
  }
}
