/**
 * The status page's routes. Login posts the token once and gets a session cookie (HttpOnly,
 * SameSite=Strict, Path=/status, Secure over https); the token is never taken from a URL. Without
 * a valid session every page answers the login form (HTML, 401), never JSON. /status/data is the
 * page's content as JSON, for the session or a bearer token.
 */
import type { Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { UsageError } from '../core/errors.js';
import { SingleFlight } from '../core/async.js';
import { bearerToken, sessionValid, sessionValue, tokenMatches } from './auth.js';
import { newNonce, pageHeaders } from './status-page-html.js';
import { renderLoginPage } from './status-page-login.js';
import { parseStatusQuery, statusPageModel, type StatusPageModel } from './status-page-model.js';
import { STATUS_PATHS } from './status-page-paths.js';
import { renderStatusPage } from './status-page.js';
import { readStatusView, type StatusSources, type StatusView } from './status-view.js';

export const SESSION_COOKIE = 'certd_session';
/** A session lasts this long after the last page load (an open page's refreshes keep it alive). */
const SESSION_MS = 12 * 3_600_000;
const LOGIN_BODY_MAX = 4096;

export interface StatusPageOptions extends StatusSources {
  token: string;
}

export function statusPageRoutes(app: Hono, o: StatusPageOptions): void {
  const html = (c: Context, body: (nonce: string) => string, status: 200 | 400 | 401) => {
    const nonce = newNonce();
    return c.html(body(nonce), status, pageHeaders(nonce));
  };
  const login = (c: Context, message: string, status: 200 | 400 | 401, extra: { info?: boolean; back?: boolean } = {}) =>
    html(c, (nonce) => renderLoginPage({ nonce, message, ...extra, next: safeNext(new URL(c.req.url).search) }), status);
  const loggedIn = (c: Context) => sessionValid(getCookie(c, SESSION_COOKIE), o.token);
  const startSession = (c: Context) =>
    setCookie(c, SESSION_COOKIE, sessionValue(o.token, Date.now() + SESSION_MS), {
      httpOnly: true,
      sameSite: 'Strict',
      path: STATUS_PATHS.prefix,
      secure: isHttps(c),
      maxAge: SESSION_MS / 1000,
    });
  // Pages open at once (several operators, a refresh beside a search) share one read of the store,
  // which parses every certificate file (seconds at 10,000, bench/RESULTS.md): until it keeps an index.
  const reads = new SingleFlight<StatusView>();
  const model = async (c: Context): Promise<StatusPageModel> => {
    const query = parseStatusQuery(c.req.query());
    return statusPageModel(await reads.run('status', () => readStatusView(o)), o.renewals?.(), query);
  };

  app.get('/', (c) => c.redirect(STATUS_PATHS.page, 302));
  app.get(STATUS_PATHS.page, async (c) => {
    // A token in a URL stays in history, logs and Referer headers: refused even when right.
    if (c.req.query('token') !== undefined) return login(c, 'A token in the URL is not accepted (it would stay in history and logs): log in here.', 400);
    if (!loggedIn(c)) {
      const message = getCookie(c, SESSION_COOKIE) ? 'Your session ended (it expired or the API token changed): log in again.' : 'Log in with the API token.';
      return login(c, message, 401, { info: true });
    }
    let m: StatusPageModel;
    try {
      m = await model(c);
    } catch (err) {
      if (err instanceof UsageError) return login(c, `Bad filter: ${err.message}`, 400, { back: true });
      throw err;
    }
    startSession(c);
    return html(c, (nonce) => renderStatusPage(m, nonce), 200);
  });
  app.get(STATUS_PATHS.data, async (c) => {
    if (!loggedIn(c) && !tokenMatches(bearerToken(c.req.header('authorization')) ?? '', o.token)) {
      return c.json({ error: { code: 'CERTD_E_API_AUTH', message: `log in at ${STATUS_PATHS.page} or send Authorization: Bearer <token>` } }, 401);
    }
    return c.json(await model(c));
  });
  const limit = bodyLimit({ maxSize: LOGIN_BODY_MAX, onError: (c) => login(c, 'The login form was too large.', 400) });
  app.post(STATUS_PATHS.login, limit, async (c) => {
    const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
    const token = typeof form.token === 'string' ? form.token.trim() : '';
    if (!token || !tokenMatches(token, o.token)) {
      return html(c, (nonce) => renderLoginPage({ nonce, message: token ? 'Wrong token: try again.' : 'Enter the API token.', next: safeNext(form.next) }), 401);
    }
    startSession(c);
    return c.redirect(`${STATUS_PATHS.page}${safeNext(form.next) ?? ''}`, 303);
  });
  app.post(STATUS_PATHS.logout, (c) => {
    deleteCookie(c, SESSION_COOKIE, { path: STATUS_PATHS.prefix, secure: isHttps(c) });
    return html(c, (nonce) => renderLoginPage({ nonce, message: 'Logged out.', info: true }), 200);
  });
}

/** Behind a TLS-terminating proxy the request arrives as http: its X-Forwarded-Proto says https. */
function isHttps(c: Context): boolean {
  return new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto') === 'https';
}

/** Only a query string of the page (the filter to come back to) survives a login; never a token. */
function safeNext(next: unknown): string | undefined {
  if (typeof next !== 'string' || !next.startsWith('?') || next.length > 1000) return undefined;
  const params = new URLSearchParams(next);
  params.delete('token');
  const s = params.toString();
  return s ? `?${s}` : undefined;
}
