/**
 * A Markdown table with padded columns: the first column left-aligned (labels), the others
 * right-aligned (numbers). Pure.
 */
export function markdownTable(head: string[], rows: string[][]): string {
  const widths = head.map((_, c) => Math.max(...[head, ...rows].map((cells) => (cells[c] ?? '').length)));
  const line = (cells: string[]) => `| ${head.map((_, i) => (cells[i] ?? '').padEnd(widths[i]!)).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(head), rule, ...rows.map(line)].join('\n');
}

/** "met" / "missed (by X %)" for a goal `value ≤ limit` (or `≥` with atLeast). */
export function verdict(value: number, limit: number, atLeast = false): string {
  if (!Number.isFinite(value)) return '**not measured**';
  const ok = atLeast ? value >= limit : value <= limit;
  if (ok) return '**met**';
  const by = atLeast ? (limit / value - 1) * 100 : (value / limit - 1) * 100;
  return `**missed** (by ${by.toFixed(0)} %)`;
}
