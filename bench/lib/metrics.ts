import type { Registry } from 'prom-client';

/** Sum and count of a prom-client histogram, over the series whose labels include `labels`. */
export interface HistogramTotals {
  sumSeconds: number;
  count: number;
}

/** Reads a histogram of a daemon's registry (e.g. certd_deploy_duration_seconds); zeros when absent. */
export async function histogramTotals(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<HistogramTotals> {
  const metric = registry.getSingleMetric(name);
  const totals = { sumSeconds: 0, count: 0 };
  if (!metric) return totals;
  const matches = (l: Record<string, unknown>) => Object.entries(labels).every(([k, v]) => String(l[k]) === v);
  for (const v of (await metric.get()).values) {
    if (!matches(v.labels)) continue;
    // A histogram's values carry the series name (`_bucket`, `_sum`, `_count`); the type omits it.
    const series = (v as { metricName?: string }).metricName;
    if (series === `${name}_sum`) totals.sumSeconds += v.value;
    if (series === `${name}_count`) totals.count += v.value;
  }
  return totals;
}

/** Mean in milliseconds of what was observed between two readings. */
export function meanMsBetween(before: HistogramTotals, after: HistogramTotals): number {
  const n = after.count - before.count;
  return n > 0 ? ((after.sumSeconds - before.sumSeconds) * 1000) / n : Number.NaN;
}
