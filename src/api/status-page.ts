import { daysLeft, expiryState } from '../core/expiry.js';
import type { StatusView } from './server.js';

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** A plain HTML page an operator can read at a glance: instances, then certificates by expiry. */
export function renderStatusPage(view: StatusView, now = Date.now()): string {
  const instances = view.instances
    .map(
      (i) =>
        `<tr class="${i.state}"><td>${esc(i.name)}</td><td>${esc(i.state)}</td><td>${esc(i.pid ?? '')}</td>` +
        `<td>${i.inSync}</td><td>${i.pending}</td><td>${esc(i.lastError ?? '')}</td></tr>`,
    )
    .join('');
  const certs = [...view.certs]
    .sort((a, b) => a.notAfter.localeCompare(b.notAfter))
    .map((c) => {
      const days = daysLeft(c.notAfter, now);
      return (
        `<tr class="${expiryState(c.notAfter, now) === 'ok' ? '' : 'soon'}"><td>${esc(c.names.join(', '))}</td><td>${esc(c.issuer)}</td>` +
        `<td>${esc(c.notAfter.slice(0, 16).replace('T', ' '))}</td><td>${days}</td><td>${esc(c.deployedOn.join(', '))}</td></tr>`
      );
    })
    .join('');
  return `<!doctype html><html><head><meta charset="utf-8"><title>haproxy-certd</title><style>
body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}
td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}.down td,.soon td{color:#b00}
</style></head><body><h1>haproxy-certd</h1>
<h2>HAProxy instances</h2><table><tr><th>instance</th><th>state</th><th>pid</th><th>in sync</th><th>pending</th><th>last error</th></tr>${instances}</table>
<h2>Certificates (${view.certs.length})</h2><table><tr><th>names</th><th>issuer</th><th>not after (UTC)</th><th>days left</th><th>deployed on</th></tr>${certs}</table>
</body></html>`;
}
