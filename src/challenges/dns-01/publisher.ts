/** One TXT value at a name, in the zone of the solver that writes it. */
export interface TxtRecord {
  fqdn: string;
  value: string;
  zone: string;
}

/**
 * Writes and removes one TXT value at a name, wherever the zone lives (RFC 2136, a hook). Adding
 * keeps other values at the name; removing a missing value succeeds. Implementations are safe to
 * call concurrently.
 */
export interface TxtPublisher {
  add(record: TxtRecord, signal?: AbortSignal): Promise<void>;
  remove(record: TxtRecord): Promise<void>;
}
