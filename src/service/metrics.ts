import type { CertMeta } from '../store/store.js';

/** `manual`: renew NAME…, renew --all, POST /v1/renew; `scheduled`: the renewal scheduler. */
export type RenewalTrigger = 'scheduled' | 'manual';

/** What CertService reports; implemented with prom-client in api/metrics.ts. */
export interface ServiceMetrics {
  /** One issuer answer; `startedMs` from performance.now(). */
  issued(issuer: string, result: 'ok' | 'error', startedMs: number): void;
  /** A certificate stored (issued, renewed, imported, or found at start). */
  certStored(meta: CertMeta): void;
  certRemoved(cert: string): void;
  renewal(cert: string, result: 'ok' | 'error', trigger: RenewalTrigger): void;
}

export const noServiceMetrics: ServiceMetrics = {
  issued() {},
  certStored() {},
  certRemoved() {},
  renewal() {},
};
