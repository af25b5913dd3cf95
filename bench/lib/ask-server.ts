import { createServer, type Server } from 'node:http';

/** An `ask` endpoint (Caddy's convention, also certd's): GET /ask?domain=NAME → 200 for every name. */
export interface AskServer {
  url: string;
  /** Names asked about, in order. */
  asked: string[];
  stop(): Promise<void>;
}

/** Starts the ask endpoint on a free loopback port. */
export async function startAskServer(): Promise<AskServer> {
  const asked: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://ask');
    if (url.pathname !== '/ask') {
      res.writeHead(404).end();
      return;
    }
    asked.push(url.searchParams.get('domain') ?? '');
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/ask`,
    asked,
    stop: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
