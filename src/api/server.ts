import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Logger } from 'pino';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { DaemonNotReadyError, DaemonStartError, TooLargeError, UsageError } from '../core/errors.js';
import { formatHostPort, tryParseHostPort } from '../core/host-port.js';
import type { CertService } from '../service/cert-service.js';
import type { Deployer } from '../haproxy/deploy/deployer.js';
import { authError, bearerToken, tokenMatches } from './auth.js';
import { encodeCursor, parseListQuery, parseStreamQuery } from './cert-listing.js';
import { streamCertArray } from './cert-stream.js';
import { errorBody, httpStatusFor, retryAfterSeconds } from './errors.js';
import { onDemandEndpoint } from './ondemand-endpoint.js';
import { answerRenewal, renewEach } from './renewals.js';
import type { Metrics } from './metrics.js';
import type { OnDemand } from '../ondemand/ondemand.js';
import { statusPageRoutes } from './status-page-routes.js';
import { readStatusSummary, type ClusterStatus, type RenewalPlans } from './status-view.js';

export interface ApiOptions {
  service: CertService;
  /** Key authorizations of HTTP-01 tokens being presented, for setups that route the path here. */
  acmeAnswer?: (token: string) => string | undefined;
  deployer?: Deployer;
  metrics: Metrics;
  token: string;
  log: Logger;
  /** The renewal scheduler's plans, for the status page (next renewals, failing renewals). */
  renewals?: () => RenewalPlans | undefined;
  /** A shared store's health, shown by /healthz (the daemon lives and serves either way). */
  storeHealth?: () => { ok: boolean };
  /** Replicas sharing the store and the store's health, for status (see ClusterStatus). */
  cluster?: () => ClusterStatus;
  /**
   * False while the daemon is still starting (deploying what is stored): reads are answered from
   * the catalog, every other /v1 request gets 503 CERTD_E_NOT_READY. Default: always writable.
   */
  writable?: () => boolean;
}

const MAX_BODY_BYTES = 1024 * 1024;
/** How long requests in flight may finish when the API closes. */
const CLOSE_GRACE_MS = 1_000;

/**
 * The daemon's HTTP API: /healthz and /metrics open, everything under /v1 behind the bearer token,
 * the status page under /status behind a login (see status-page-routes.ts).
 */
export function createApi(o: ApiOptions): Hono {
  const app = new Hono();
  app.onError((err, c) => {
    const status = httpStatusFor(err);
    // A start in progress is expected (a probe polls it), not an error to log.
    if (status >= 500 && !(err instanceof DaemonNotReadyError)) o.log.error({ err: err.message, path: c.req.path }, 'api error');
    const retryAfter = retryAfterSeconds(err);
    if (retryAfter !== undefined) c.header('retry-after', String(retryAfter));
    return c.json(errorBody(err), status as ContentfulStatusCode);
  });

  const notReady = (what: string) =>
    new DaemonNotReadyError(`the daemon is starting (deploying the stored certificates): ${what} once it is ready; reads under /v1 are answered meanwhile; retry in a moment`, { retryAfterMs: 1_000 });
  // Healthy once started, as before the API answered reads during the start: probes and the CLI's
  // "is a daemon up" keep their meaning.
  app.get('/healthz', (c) => {
    if (o.writable && !o.writable()) throw notReady('healthy');
    return c.json(o.storeHealth ? { ok: true, store: o.storeHealth() } : { ok: true });
  });
  app.get('/.well-known/acme-challenge/:token', (c) => {
    const answer = o.acmeAnswer?.(c.req.param('token'));
    return answer ? c.text(answer) : c.text('not found\n', 404);
  });
  app.get('/metrics', async (c) => c.text(await o.metrics.registry.metrics(), 200, { 'content-type': o.metrics.registry.contentType }));

  const v1 = new Hono();
  v1.use('*', async (c, next) => {
    if (!tokenMatches(bearerToken(c.req.header('authorization')) ?? '', o.token)) return c.json(authError(), 401);
    if (o.writable && c.req.method !== 'GET' && c.req.method !== 'HEAD' && !o.writable()) {
      throw notReady(`${c.req.method} ${c.req.path} is taken`);
    }
    await next();
  });
  v1.use(
    '*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new TooLargeError(`request body is over the API's limit of ${MAX_BODY_BYTES} bytes (1 MiB): send one certificate per request`);
      },
    }),
  );

  v1.get('/certs', async (c) => {
    const streamed = parseStreamQuery(c.req.query());
    if (streamed) return streamCertArray(c, o.service, streamed);
    const { next, ...page } = await o.service.page(parseListQuery(c.req.query()));
    return c.json({ ...page, ...(next === undefined ? {} : { next: encodeCursor(next) }) });
  });
  v1.post('/certs', async (c) => {
    const body = await jsonBody(c.req.raw);
    const result = await o.service.ensure(stringList(body.names, 'names'), { issuer: optString(body.issuer, 'issuer'), origin: 'api' });
    return c.json(result, 200);
  });
  v1.post('/renew', async (c) => {
    const body = await jsonBody(c.req.raw);
    // A name that does not exist is answered before any renewal (and before a stream starts).
    const targets = await o.service.renewalTargets(body.all === true ? 'all' : stringList(body.names, 'names'));
    return answerRenewal(c, (signal) => renewEach(o.service, targets, signal), o.log);
  });
  v1.post('/import', async (c) => {
    const body = await jsonBody(c.req.raw);
    return c.json(await o.service.importPem(reqString(body.cert, 'cert'), optString(body.key, 'key') ?? ''));
  });
  v1.delete('/certs/:id', async (c) => c.json(await o.service.remove(c.req.param('id'))));
  v1.get('/status', async (c) => c.json(await readStatusSummary(o)));

  app.route('/v1', v1);
  statusPageRoutes(app, o);
  return app;
}

export interface RunningApi {
  url: string;
  /**
   * Starts answering with the app; until then every request gets 503 CERTD_E_NOT_READY. `onDemand`,
   * when configured, serves `POST /ondemand` ahead of the app (see ondemand-endpoint.ts).
   */
  serve(app: Hono, onDemand?: { handler: OnDemand; token: string }): void;
  close(): Promise<void>;
}

/**
 * Binds host:port (port 0 picks a free one) before the daemon starts anything else, so a port in
 * use stops the start before any HAProxy hears from this process. DaemonStartError when taken.
 */
export function listenApi(listen: string): Promise<RunningApi> {
  const [host, portText] = splitHostPort(listen);
  let handle = (_req: IncomingMessage, res: ServerResponse): void => {
    const body = JSON.stringify(errorBody(new DaemonNotReadyError('the daemon is starting (or stopping): retry in a moment')));
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' }).end(body);
  };
  const server = createServer((req, res) => handle(req, res));
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'is in use by another process (another haproxy-certd?): stop it, or set another api.listen' : `cannot be bound (${err.code ?? err.message})`;
      reject(new DaemonStartError(`api.listen ${listen} ${why}`, { cause: err, category: err.code === 'EADDRINUSE' ? 'conflict' : 'unavailable' }));
    });
    server.listen(Number(portText), host, () => {
      const { address, port } = server.address() as AddressInfo;
      resolve({
        url: `http://${formatHostPort({ host: address, port })}`,
        serve(app, onDemand) {
          const toApp = getRequestListener(app.fetch);
          const toOnDemand = onDemand && onDemandEndpoint(onDemand.handler, onDemand.token);
          handle = (req, res) => {
            if (toOnDemand && ((req.method === 'POST' && req.url === '/ondemand') || (req.method === 'POST' && req.url === '/ondemand/grant'))) toOnDemand(req, res);
            else void toApp(req, res);
          };
        },
        close: () =>
          new Promise((done) => {
            // Requests in flight get a moment; then every connection is closed, so one a client
            // left half-sent (a 413 answered before its body was read) cannot hold the stop.
            const cut = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
            server.close(() => {
              clearTimeout(cut);
              done();
            });
          }),
      });
    });
  });
}

export function splitHostPort(listen: string): [string, string] {
  const hp = tryParseHostPort(listen, { allowPortZero: true, allowAnyHost: true });
  if (!hp) throw new UsageError(`api.listen "${listen}" must be host:port, e.g. 127.0.0.1:9180`);
  return [hp.host, String(hp.port)];
}

async function jsonBody(req: Request): Promise<Record<string, unknown>> {
  try {
    const body = await req.json();
    if (body && typeof body === 'object' && !Array.isArray(body)) return body as Record<string, unknown>;
  } catch {
    /* reported below */
  }
  throw new UsageError('request body must be a JSON object');
}

function stringList(v: unknown, key: string): string[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((s) => typeof s === 'string')) {
    throw new UsageError(`"${key}" must be a non-empty array of strings`);
  }
  return v as string[];
}

function reqString(v: unknown, key: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new UsageError(`"${key}" must be a non-empty string`);
  return v;
}

function optString(v: unknown, key: string): string | undefined {
  return v === undefined ? undefined : reqString(v, key);
}
