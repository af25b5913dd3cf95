import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Logger } from 'pino';
import { runtimeChannel } from '../haproxy/runtime/client.js';

/** Runtime-client events an operator should see: someone else's transaction was thrown away. */
const WARN = new Set(['foreign-transaction-aborted', 'stale-transaction-aborted', 'txn-mismatch']);

/**
 * Logs the runtime clients' transaction events (another client's open `set ssl cert` aborted, our
 * own left open) at warn, the rest at debug. Returns the function that stops it.
 */
export function logRuntimeEvents(log: Logger): () => void {
  const listener = (message: unknown) => {
    const { event, ...fields } = message as { event: string; [k: string]: unknown };
    if (WARN.has(event)) log.warn({ ...fields, event }, `haproxy runtime: ${event}`);
    else log.debug({ ...fields, event }, `haproxy runtime: ${event}`);
  };
  subscribe(runtimeChannel.name, listener);
  return () => unsubscribe(runtimeChannel.name, listener);
}
