import { esc, page } from './status-page-html.js';
import { STATUS_PATHS } from './status-page-paths.js';

/**
 * The login form: the token is posted once and answered with a session cookie, never put in a URL.
 * `back`: also a link to the unfiltered page (a bad filter from someone logged in).
 */
export function renderLoginPage(o: { nonce: string; message: string; info?: boolean; next?: string; back?: boolean }): string {
  return page({
    title: 'haproxy-certd: log in',
    nonce: o.nonce,
    body: `<main><form class="login" method="post" action="${STATUS_PATHS.login}">
<h1>haproxy-certd status</h1>
<p class="msg${o.info ? ' info' : ''}" role="alert" id="login-message">${esc(o.message)}</p>
${o.back ? `<p><a href="${STATUS_PATHS.page}">back to the status page</a></p>` : ''}
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
${o.next ? `<input type="hidden" name="next" value="${esc(o.next)}">` : ''}
<button type="submit">Log in</button>
<p class="muted">The token is the daemon's <code>api.token</code>, or the file <code>api-token</code> in its dataDir.</p>
</form></main>`,
  });
}
