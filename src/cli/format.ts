import { daysLeft, expiryState, type ExpiryState } from '../core/expiry.js';
import type { CertView } from '../service/cert-service.js';

export interface TableOptions {
  /** Line width to fit (a terminal's columns): the `shrink` column is cut, ending in "…". */
  width?: number;
  /** The column that gives up room (default 0). */
  shrink?: number;
  /** Colours a body cell; gets the cell already padded, so colour codes never skew the columns. */
  paint?: (row: number, col: number, padded: string) => string;
}

const MIN_SHRUNK = 8;

/** Renders rows as an aligned text table with a header. Pure. */
export function table(header: string[], rows: string[][], o: TableOptions = {}): string {
  const shrink = o.shrink ?? 0;
  const cut = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  if (o.width !== undefined) {
    const total = widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1);
    if (total > o.width) widths[shrink] = Math.max(MIN_SHRUNK, widths[shrink]! - (total - o.width));
  }
  const line = (cells: string[], row?: number) =>
    cells
      .map((c, i) => {
        const fitted = i === shrink ? cut(c, widths[i]!) : c;
        const padded = i === cells.length - 1 ? fitted : fitted.padEnd(widths[i]!);
        return row !== undefined && o.paint ? o.paint(row, i, padded) : padded;
      })
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map((r, i) => line(r, i))].join('\n');
}

/** Colour on a terminal only, and never when NO_COLOR is set to anything (no-color.org). */
export function useColour(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !env.NO_COLOR;
}

const COLOUR: Record<ExpiryState, (s: string) => string> = {
  expired: (s) => `\x1b[31m${s}\x1b[39m`,
  soon: (s) => `\x1b[33m${s}\x1b[39m`,
  ok: (s) => s,
};

export interface CertListOptions {
  now?: number;
  /** See TableOptions.width; names are cut first. */
  width?: number;
  colour?: boolean;
}

const LEFT_COLUMN = 4;

/** `list`: one line per certificate, soonest expiry first, days left at a glance; where it came from (ORIGIN). */
export function formatCertList(certs: CertView[], o: CertListOptions = {}): string {
  const now = o.now ?? Date.now();
  const sorted = [...certs].sort((a, b) => a.notAfter.localeCompare(b.notAfter));
  const rows = sorted.map((c) => {
    const days = daysLeft(c.notAfter, now);
    return [
      c.names.join(', '),
      c.issuer,
      c.origin,
      c.notAfter.slice(0, 16).replace('T', ' '),
      days < 0 ? 'EXPIRED' : `${days}d`,
      c.deployedOn.length > 0 ? c.deployedOn.join(', ') : '-',
    ];
  });
  const paint = o.colour
    ? (row: number, col: number, padded: string) => (col === LEFT_COLUMN ? COLOUR[expiryState(sorted[row]!.notAfter, now)](padded) : padded)
    : undefined;
  return table(['NAMES', 'ISSUER', 'ORIGIN', 'NOT AFTER (UTC)', 'LEFT', 'DEPLOYED ON'], rows, { width: o.width, paint });
}

/** How `list` and `status` print certificates on this stdout: fitted and coloured on a terminal. */
export function certListForStdout(certs: CertView[]): string {
  return formatCertList(certs, { width: process.stdout.columns, colour: useColour(process.stdout) });
}
