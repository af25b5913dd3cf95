import type { Context } from 'hono';
import { stream } from 'hono/streaming';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import type { CertService, IssueResult } from '../service/cert-service.js';
import type { CertMeta } from '../store/store.js';
import { errorBody, httpStatusFor } from './errors.js';

/** What a manual renewal came to, for a person (`renew`'s last line) and a script alike. */
export interface RenewSummary {
  total: number;
  /** Re-issued. */
  issued: number;
  /** Answered with the certificate already stored (another caller renewed it meanwhile). */
  unchanged: number;
  /** Ids of the certificates that failed, in the order they were tried. */
  failed: string[];
  /** Renewed but not yet served by every instance (the daemon goes on retrying those). */
  pending: number;
  ms: number;
}

/** One failed certificate: its error as the API would answer it alone. */
export interface RenewFailure {
  id: string;
  names: string[];
  error: { code: string; message: string };
  /** The HTTP status this error alone gets (core/errors.ts outcomeOf). */
  status: number;
}

/**
 * The NDJSON stream of `POST /v1/renew` (Accept: application/x-ndjson), one object a line: `start`,
 * then `result` or `failure` per certificate as each finishes (`done` of `total`), then `summary`.
 */
export type RenewLine =
  | { type: 'start'; total: number }
  | { type: 'result'; done: number; total: number; id: string; result: IssueResult }
  | ({ type: 'failure'; done: number; total: number } & RenewFailure)
  | ({ type: 'summary' } & RenewSummary);

export const NDJSON = 'application/x-ndjson';

/**
 * Renews the targets one after the other and goes on past a failure: one certificate's CA error
 * must not leave the other 897 unrenewed. Stops between certificates once `signal` aborts (the
 * client went away). Not safe to iterate twice.
 */
export async function* renewEach(service: CertService, targets: readonly CertMeta[], signal?: AbortSignal): AsyncGenerator<RenewLine> {
  const started = Date.now();
  const total = targets.length;
  const summary: RenewSummary = { total, issued: 0, unchanged: 0, failed: [], pending: 0, ms: 0 };
  yield { type: 'start', total };
  for (const [i, meta] of targets.entries()) {
    if (signal?.aborted) return;
    const done = i + 1;
    try {
      const result = await service.renewOne(meta);
      if (result.issued) summary.issued++;
      else summary.unchanged++;
      if ((result.deploy?.failed.length ?? 0) > 0) summary.pending++;
      yield { type: 'result', done, total, id: meta.id, result };
    } catch (err) {
      summary.failed.push(meta.id);
      yield { type: 'failure', done, total, id: meta.id, names: meta.names, error: errorBody(err).error, status: httpStatusFor(err) };
    }
  }
  yield { type: 'summary', ...summary, ms: Date.now() - started };
}

/**
 * Answers a renewal: as NDJSON lines while it runs when the client asks for them, else one JSON
 * document at the end — `{results, failed, summary}`, 200 when nothing failed, else the first
 * failure's status with an `error` naming every failed certificate (so a caller that only checks
 * the status still sees it).
 */
export async function answerRenewal(c: Context, lines: (signal: AbortSignal) => AsyncGenerator<RenewLine>, log: Logger): Promise<Response> {
  const logged = async function* (signal: AbortSignal) {
    for await (const line of lines(signal)) {
      if (line.type === 'failure') log.warn({ cert: line.id, code: line.error.code, err: line.error.message }, 'manual renewal failed');
      if (line.type === 'summary') log.info({ total: line.total, issued: line.issued, failed: line.failed.length, ms: line.ms }, 'manual renewal done');
      yield line;
    }
  };
  if (c.req.header('accept')?.includes(NDJSON)) {
    c.header('content-type', NDJSON);
    return stream(c, async (out) => {
      const gone = new AbortController();
      out.onAbort(() => gone.abort());
      for await (const line of logged(gone.signal)) await out.write(`${JSON.stringify(line)}\n`);
    });
  }
  const results: IssueResult[] = [];
  const failed: RenewFailure[] = [];
  let summary: RenewSummary | undefined;
  for await (const line of logged(c.req.raw.signal)) {
    if (line.type === 'result') results.push(line.result);
    else if (line.type === 'failure') failed.push({ id: line.id, names: line.names, error: line.error, status: line.status });
    else if (line.type === 'summary') summary = withoutType(line);
  }
  const first = failed[0];
  if (!first) return c.json({ results, failed, summary });
  const error = { code: first.error.code, message: `${failed.length} of ${results.length + failed.length} certificate(s) failed to renew: ${failed.map((f) => `${f.id} (${f.error.message})`).join('; ')}` };
  return c.json({ error, results, failed, summary }, first.status as ContentfulStatusCode);
}

function withoutType({ type, ...summary }: { type: 'summary' } & RenewSummary): RenewSummary {
  return summary;
}
