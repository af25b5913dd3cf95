/**
 * Where a source delivers what it finds. A source calls these one at a time (never two calls in
 * flight from the same source), so an implementation needs no locking against one source; it must
 * be safe to use from several sources at once.
 */
export interface SourceSink {
  /** A valid bundle found under `key` (a path or URL), replacing what that key gave before. */
  put(key: string, certPem: string, keyPem: string): Promise<void>;
  /** What `key` gave is gone (file/folder removed, name dropped from the index). */
  drop(key: string): Promise<void>;
  /** `key` holds something broken: reported; the previous good version keeps serving. */
  reject(key: string, error: Error): void;
}

/**
 * A place certificates come from that someone else renews (certbot, cert-manager, a vault).
 * A source validates every bundle before `put`, calls `put` only when the content changed, and
 * never drops on a failure to read: an unreachable or broken source leaves what is served alone.
 * `start`, `rescan` and `stop` are safe to call concurrently; passes never overlap.
 */
export interface CertSource {
  /** For logs and status: `directory:<path>` or `http:<url>`. */
  readonly name: string;
  /** Delivers to `sink` from now on; resolves after the first full pass. */
  start(sink: SourceSink): Promise<void>;
  /** One full pass now (joins a pass already running, then runs one more). */
  rescan(): Promise<void>;
  /** Stops timers, watchers and requests; resolves when no pass runs anymore. */
  stop(): Promise<void>;
}
