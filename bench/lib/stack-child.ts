import { startStack, type Stack } from '../../test/helpers/stack.js';
import { histogramTotals } from './metrics.js';

/*
 * Child side of StackProcess: one certd stack (daemon + managed HAProxy) in this process, driven
 * over the IPC channel. Requests are { id, op, ... }; answers { id, result } or { id, error }.
 */

type Request =
  | { id: number; op: 'start'; config: Parameters<typeof startStack>[0] }
  | { id: number; op: 'rootPem' | 'workerPid' | 'stop' }
  | { id: number; op: 'histogram'; name: string };

let stack: Stack | undefined;

async function serve(m: Request): Promise<unknown> {
  if (m.op === 'start') {
    stack = await startStack(m.config);
    return { tlsPort: stack.tlsPort, crtList: stack.config.haproxy.crtList, certDir: stack.config.haproxy.certDir };
  }
  if (!stack) throw new Error('the stack is not started');
  switch (m.op) {
    case 'rootPem':
      return stack.rootPem();
    case 'workerPid':
      return stack.haproxy.workerPid();
    case 'histogram':
      return histogramTotals(stack.daemon.metrics.registry, m.name);
    case 'stop':
      await stack.stop();
      stack = undefined;
      return null;
  }
}

process.on('message', (m: Request) => {
  serve(m).then(
    (result) => process.send!({ id: m.id, result }),
    (err: Error) => process.send!({ id: m.id, error: err.message }),
  );
});
process.on('disconnect', () => void (stack?.stop() ?? Promise.resolve()).finally(() => process.exit(0)));
