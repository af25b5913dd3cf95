/** Order statistics and number formatting for the benches. Pure. */

/** The q-quantile (0..1) by nearest rank; NaN for no samples. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function median(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Fixed decimals with thousands separators: 12345.6 → "12,345.6". */
export function num(n: number, decimals = 0): string {
  if (!Number.isFinite(n)) return 'n/a';
  return n.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** Milliseconds with precision that suits their size. */
export function ms(n: number): string {
  if (!Number.isFinite(n)) return 'n/a';
  if (n >= 10_000) return `${num(n / 1000, 1)} s`;
  if (n >= 100) return `${num(n, 0)} ms`;
  return `${num(n, 2)} ms`;
}

export function ratio(n: number): string {
  if (!Number.isFinite(n)) return 'n/a';
  return n >= 100 ? `${num(n, 0)}×` : `${num(n, 2)}×`;
}
