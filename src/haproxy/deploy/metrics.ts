export type DeployOp = 'add' | 'update' | 'remove';

/** What the deployer reports; implemented with prom-client in api/metrics.ts. */
export interface DeployMetrics {
  /** One operation done on an instance; `startedMs` from performance.now(). */
  observe(instance: string, op: DeployOp, startedMs: number): void;
  error(instance: string): void;
  instanceUp(instance: string, up: boolean): void;
  /** The instance left the fleet (discovery): its series go. */
  instanceGone(instance: string): void;
}

export const noDeployMetrics: DeployMetrics = {
  observe() {},
  error() {},
  instanceUp() {},
  instanceGone() {},
};
