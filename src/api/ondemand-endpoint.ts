import type { IncomingMessage, ServerResponse } from 'node:http';
import type { OnDemand } from '../ondemand/ondemand.js';
import { authError, bearerToken, tokenMatches } from './auth.js';

/** An SNI is at most 255 bytes; the rest is room for HAProxy's framing. */
const MAX_BODY_BYTES = 1024;

/** 201 (approved) only in forge mode: the forge Lua routes to the forge bind on exactly that status. */
const STATUS = { known: 200, issued: 200, pending: 202, approved: 201, refused: 403, limited: 429, failed: 502 } as const;

/**
 * `POST /ondemand`, called by HAProxy's Lua with the raw SNI as the body while a handshake waits.
 * Served on plain node:http, ahead of the Hono app: the Web Request conversion cost ~0.5 ms of
 * that wait. The answer only says what happened (the Lua reads the status).
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
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) return reply(413, { status: 'refused', reason: 'body-too-large' });
      const client = req.headers['x-certd-client'];
      handler.handle(Buffer.concat(chunks).toString('utf8'), typeof client === 'string' ? client : '').then(
        (outcome) => reply(STATUS[outcome.status], outcome),
        (err: Error) => reply(500, { status: 'failed', reason: err.message }),
      );
    });
  };
}
