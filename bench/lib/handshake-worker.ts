import { parentPort } from 'node:worker_threads';
import { timedHandshake } from './handshakes.js';

/*
 * The measuring client, on its own thread (see HandshakeClient): it times handshakes without
 * sharing an event loop with the daemon, which the benchmarks run in their own process.
 */

interface Job {
  id: number;
  port: number;
  name: string;
  opts: { ca?: string; timeoutMs?: number };
}

parentPort!.on('message', (job: Job) => {
  timedHandshake(job.port, job.name, job.opts).then(
    (result) => parentPort!.postMessage({ id: job.id, result }),
    (err: Error) => parentPort!.postMessage({ id: job.id, error: err.message, code: (err as NodeJS.ErrnoException).code }),
  );
});
