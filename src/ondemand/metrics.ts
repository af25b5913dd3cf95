/** What on-demand reports; implemented with prom-client in api/metrics.ts. */
export interface OnDemandMetrics {
  /** One handshake's answer: its status (known, issued, pending, approved, refused, limited, failed) and reason. */
  onDemand(status: string, reason: string): void;
  /** An on-demand issuance done; `startedMs` from performance.now(). */
  onDemandIssued(startedMs: number): void;
}

export const noOnDemandMetrics: OnDemandMetrics = {
  onDemand() {},
  onDemandIssued() {},
};
