import { parentPort } from 'node:worker_threads';
import { startAskServer } from './ask-server.js';
import { timedHandshake } from './handshakes.js';

/*
 * The measuring client and the `ask` endpoint, on their own thread (see HandshakeClient): handshakes
 * are timed, and ask requests answered, without sharing an event loop with the daemon, which the
 * benchmarks run in their own process.
 */

type Message = { id: number; op: 'handshake'; port: number; name: string; opts: { ca?: string; timeoutMs?: number } } | { id: number; op: 'asked' };

const ask = await startAskServer();
parentPort!.postMessage({ ready: ask.url });

parentPort!.on('message', (m: Message) => {
  if (m.op === 'asked') {
    parentPort!.postMessage({ id: m.id, result: ask.asked });
    return;
  }
  timedHandshake(m.port, m.name, m.opts).then(
    (result) => parentPort!.postMessage({ id: m.id, result }),
    (err: Error) => parentPort!.postMessage({ id: m.id, error: err.message, code: (err as NodeJS.ErrnoException).code }),
  );
});
