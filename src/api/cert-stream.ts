/**
 * `GET /v1/certs?stream=array`: every matching certificate as one JSON array (2-space indent, as
 * `list --json` prints it), written a page at a time as the catalog is read, so the CLI can pass
 * the body straight to stdout. Pages are keyset-read as a client would page (a certificate added
 * or removed meanwhile never makes one repeat or vanish), and the event loop is given back between
 * them, so a listing of 100,000 does not hold up pushes or other requests.
 */
import { setImmediate as yieldLoop } from 'node:timers/promises';
import type { Context } from 'hono';
import { stream } from 'hono/streaming';
import type { CertService } from '../service/cert-service.js';
import type { PageRequest } from '../store/catalog.js';
import { arrayChunk } from './cert-listing.js';

/** Certificates serialized per turn of the event loop (~5 ms of work). */
const CHUNK = 1_000;

export function streamCertArray(c: Context, service: Pick<CertService, 'page'>, req: Omit<PageRequest, 'limit'>): Response {
  c.header('content-type', 'application/json; charset=utf-8');
  return stream(c, async (out) => {
    let gone = false;
    out.onAbort(() => {
      gone = true;
    });
    let after: string | undefined;
    let first = true;
    do {
      const page = await service.page({ ...req, limit: CHUNK, ...(after === undefined ? {} : { after }) });
      if (page.certs.length > 0) {
        await out.write(`${first ? '[\n' : ',\n'}${arrayChunk(page.certs)}`);
        first = false;
      }
      after = page.next;
      if (after !== undefined) await yieldLoop();
    } while (after !== undefined && !gone);
    if (!gone) await out.write(first ? '[]\n' : '\n]\n');
  });
}
