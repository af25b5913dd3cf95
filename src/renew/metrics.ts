import type { ServiceMetrics } from '../service/metrics.js';

/** What the renewal scheduler reports (its renewals are `scheduled`); implemented in api/metrics.ts. */
export interface RenewalMetrics extends Pick<ServiceMetrics, 'renewal'> {
  /** Renewals of `issuer` now due that its order budget cannot start before they expire (0: none). */
  budgetShortfall(issuer: string, count: number): void;
}

export const noRenewalMetrics: RenewalMetrics = { renewal() {}, budgetShortfall() {} };
