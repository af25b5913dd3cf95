import { createServer } from 'node:net';

/**
 * A TCP port the kernel just handed out on 127.0.0.1 (listen(0)), closed again for the caller to
 * bind. Tests never use fixed ports, so they run in parallel with anything else on the machine.
 */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}
