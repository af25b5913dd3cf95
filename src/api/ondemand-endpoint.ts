import type { IncomingMessage, ServerResponse } from 'node:http';
import type { OnDemand } from '../ondemand/ondemand.js';
import { FORWARDED_HEADER } from '../ondemand/forward.js';
import { authError, bearerToken, tokenMatches } from './auth.js';

/** An SNI is at most 255 bytes; the rest is room for HAProxy's framing. */
const MAX_BODY_BYTES = 1024;
/** A grant report: at most 1,000 names of ≤ 253 bytes plus their lines. */
const MAX_GRANT_BODY_BYTES = 300_000;

/** 201 (approved) only in forge mode: the forge Lua routes to the forge bind on exactly that status. */
const STATUS = { known: 200, issued: 200, pending: 202, approved: 201, refused: 403, limited: 429, failed: 502 } as const;

/**
 * `POST /ondemand`, called by HAProxy's Lua with the raw SNI as the body while a handshake waits.
 * Served on plain node:http, ahead of the Hono app: the Web Request conversion cost ~0.5 ms of
 * that wait. The answer only says what happened (the Lua reads the status).
 *
 * `POST /ondemand/grant` (forge with local decisions): HAProxy's Lua task reports the names it
 * approved and takes its next grant (OnDemand.grant); same token, text body both ways.
 */
export function onDemandEndpoint(handler: OnDemand, token: string): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (!tokenMatches(bearerToken(req.headers.authorization) ?? '', token)) {
      req.resume();
      return reply(401, authError());
    }
    const isGrant = req.url === '/ondemand/grant';
    const limit = isGrant ? MAX_GRANT_BODY_BYTES : MAX_BODY_BYTES;
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > limit) return reply(413, { status: 'refused', reason: 'body-too-large' });
      if (isGrant) return grantReply(res, handler, Buffer.concat(chunks).toString('utf8'));
      const client = req.headers['x-certd-client'];
      handler.handle(Buffer.concat(chunks).toString('utf8'), typeof client === 'string' ? client : '', req.headers[FORWARDED_HEADER] !== undefined).then(
        (outcome) => reply(STATUS[outcome.status], outcome),
        (err: Error) => reply(500, { status: 'failed', reason: err.message }),
      );
    });
  };
}

function grantReply(res: ServerResponse, handler: OnDemand, body: string): void {
  let text: string;
  try {
    text = handler.grant(body);
  } catch (err) {
    res.writeHead(409, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'failed', reason: (err as Error).message }));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain' }).end(text);
}
