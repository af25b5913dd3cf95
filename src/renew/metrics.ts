import type { ServiceMetrics } from '../service/metrics.js';

/** What the renewal scheduler reports (its renewals are `scheduled`); implemented in api/metrics.ts. */
export type RenewalMetrics = Pick<ServiceMetrics, 'renewal'>;

export const noRenewalMetrics: RenewalMetrics = { renewal() {} };
