import { Agent, createServer, get } from 'node:http';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { LocalCa } from '../../src/issuers/local-ca/ca.js';
import { createRoot } from '../../src/issuers/local-ca/root.js';
import { parseRuntimeAddress } from '../../src/haproxy/runtime/address.js';
import { OK } from '../../src/haproxy/runtime/reply.js';
import { RuntimeSession } from '../../src/haproxy/runtime/session.js';

/*
 * The floor of on-demand TLS on HAProxy 2.6, in a process of its own: what the Lua action's
 * endpoint must do at the least, and nothing else. Ask the `ask` URL (kept-alive), sign from a
 * local CA (the daemon's own code), push new + set + commit + add crt-list in ONE write on one
 * prompt session, answer 200. No name checks, policy, lock, store look, files, map entry, metrics
 * or logs: a bound for certd's first handshake through the same HAProxy hop, not a product.
 *
 * argv: <runtime> <certDir> <crtList> <askUrl> <port>. Prints {"rootPem"} as one JSON line once
 * listening; the runtime session opens at the first request (HAProxy starts after this).
 */

const [runtime, certDir, crtList, askUrl, port] = process.argv.slice(2) as [string, string, string, string, string];
const ca = LocalCa.fromRoot(await createRoot());
let session: Promise<RuntimeSession> | undefined;
const askAgent = new Agent({ keepAlive: true });
let pushes: Promise<unknown> = Promise.resolve();

function ask(name: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    get(`${askUrl}?domain=${encodeURIComponent(name)}`, { agent: askAgent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    }).on('error', reject);
  });
}

async function issueAndPush(name: string): Promise<void> {
  if (!(await ask(name))) throw new Error(`ask refused ${name}`);
  const leaf = await ca.issueLeaf({ names: [name], validityMs: 30 * 86_400_000 });
  const path = join(certDir, `${createHash('sha1').update(name).digest('hex')}.pem`);
  // One transaction at a time per HAProxy: pushes queue, as they would in any client.
  // A failed open is not kept: the next request tries again.
  session ??= RuntimeSession.open(parseRuntimeAddress(runtime)).catch((err: unknown) => {
    session = undefined;
    throw err;
  });
  const s = await session;
  const push = pushes.then(() =>
    s.executeAll([
      { line: `new ssl cert ${path}` },
      { line: `set ssl cert ${path}`, payload: `${leaf.certPem}${leaf.keyPem}` },
      { line: `commit ssl cert ${path}` },
      { line: `add ssl crt-list ${crtList}`, payload: `${path} ${name}` },
    ]),
  );
  pushes = push.catch(() => undefined);
  const replies = await push;
  if (!OK.addCrtList.test(replies[3] ?? '')) throw new Error(`push of ${name}: ${JSON.stringify(replies)}`);
}

const server = createServer((req, res) => {
  let body = '';
  req.on('data', (chunk: Buffer) => (body += chunk.toString('latin1')));
  req.on('end', () => {
    issueAndPush(body.trim()).then(
      () => res.writeHead(200).end('ok'),
      (err: Error) => res.writeHead(502).end(err.message),
    );
  });
});
server.listen(Number(port), '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ rootPem: ca.rootPem })}\n`));
process.on('SIGTERM', () => {
  void session?.then((s) => s.destroy());
  askAgent.destroy();
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
