/**
 * The status page an operator keeps open: a summary banner, the instances, an expiry histogram, and
 * one page of certificates for a search and filter (all computed on the server, see
 * status-page-model.ts). It reloads its content in place every `?refresh=` seconds unless paused.
 */
import { CERT_ORIGINS, CERT_STATES, PER_PAGE_DEFAULT, PER_PAGE_MAX, REFRESH_DEFAULT_S, type CertRow, type ExpiryBucket, type StatusPageModel, type StatusQuery } from './status-page-model.js';
import { esc, page } from './status-page-html.js';
import { STATUS_PATHS } from './status-page-paths.js';

const STATE_LABEL: Record<(typeof CERT_STATES)[number], string> = {
  valid: 'valid',
  soon: 'expires soon',
  expired: 'expired',
  failing: 'renewal failing',
  pending: 'pending deploy',
};

export function renderStatusPage(m: StatusPageModel, nonce: string): string {
  return page({
    title: `haproxy-certd status${problemCount(m) > 0 ? ` (${problemCount(m)} problems)` : ''}`,
    nonce,
    header: `<header><h1>haproxy-certd status</h1>
<span>generated at <time id="generated-at" datetime="${esc(m.generatedAt)}">${esc(m.generatedAt.replace('T', ' ').slice(0, 19))} UTC</time></span>
<span>auto-refresh every ${m.query.refresh} s <button type="button" id="refresh-toggle" aria-pressed="false">pause</button></span>
<form method="post" action="${STATUS_PATHS.logout}"><button type="submit" id="logout">log out</button></form></header>`,
    body: `<main id="content">${content(m)}</main>`,
    script: refreshScript(m.query.refresh),
  });
}

function problemCount(m: StatusPageModel): number {
  const { instances: i, certs: c } = m.summary;
  const store = m.store && !m.store.ok ? 1 : 0;
  return i.down + i.misconfigured + c.expired + c.failing + store + (m.replicas ?? []).filter((r) => r.state === 'gone').length;
}

/** Everything the auto-refresh replaces. */
function content(m: StatusPageModel): string {
  return [banner(m), instancesTable(m), replicasTable(m), chart(m.timeline, m.soonDays, m.matching), filterForm(m), certTable(m)].join('\n');
}

function num(key: string, n: number): string {
  return `<span class="num" data-summary="${esc(key)}">${n}</span>`;
}

function stateLink(m: StatusPageModel, state: string, label: string, n: number): string {
  return `<li><a href="${esc(href({ ...m.query, state: state as StatusQuery['state'], page: 1 }))}"><span class="badge b-${esc(state)}">${esc(label)}</span></a> ${num(`certs.${state}`, n)}</li>`;
}

function banner(m: StatusPageModel): string {
  const { instances: i, certs: c, nextRenewals, failures } = m.summary;
  const instanceItems = [
    `<li><span class="badge b-up">up</span> ${num('instances.up', i.up)}</li>`,
    `<li><span class="badge b-down">DOWN</span> ${num('instances.down', i.down)}</li>`,
    `<li><span class="badge b-misconfigured">misconfigured</span> ${num('instances.misconfigured', i.misconfigured)}</li>`,
    ...(i.starting > 0 ? [`<li><span class="badge b-starting">starting</span> ${num('instances.starting', i.starting)}</li>`] : []),
  ];
  const certItems = CERT_STATES.map((s) => stateLink(m, s, STATE_LABEL[s], c[s]));
  return `<section class="cards" id="summary" aria-label="summary">
<div class="card"><h3>HAProxy instances (${num('instances.total', i.total)})</h3><ul>${instanceItems.join('')}</ul></div>
<div class="card"><h3>Certificates (${num('certs.total', c.total)})</h3><ul>${certItems.join('')}
<li><span class="badge b-notrenewed">not renewed by certd</span> ${num('certs.notRenewed', c.notRenewed)} <span class="muted">(imported, from sources)</span></li></ul>
<p class="muted">expires soon = under ${m.soonDays} days left (as in the CLI)</p></div>
<div class="card" id="next-renewals"><h3>Next renewals</h3>${
    nextRenewals.length
      ? `<ul>${nextRenewals.map((r) => `<li>${esc(r.id)} <span class="muted">${r.at <= m.generatedAt ? 'due now' : esc(shortTime(r.at))}</span></li>`).join('')}</ul>`
      : '<p class="muted">none planned</p>'
  }</div>
<div class="card" id="failures"><h3>Failures</h3>${
    failures.length
      ? `<ul>${failures.map((f) => `<li class="err"><b>${esc(f.name)}</b> ${esc(f.message)}${f.at ? ` <span class="muted">${esc(shortTime(f.at))}</span>` : ''}</li>`).join('')}</ul>`
      : '<p class="muted">none</p>'
  }</div>
</section>`;
}

function instancesTable(m: StatusPageModel): string {
  const rows = m.instances
    .map(
      (i) =>
        `<tr class="i-${esc(i.state)}" data-instance="${esc(i.name)}"><td>${esc(i.name)}</td><td><span class="badge b-${esc(i.state)}">${esc(i.state === 'down' ? 'DOWN' : i.state)}</span></td>` +
        `<td>${esc(i.pid ?? '')}</td><td class="n">${i.inSync}</td><td class="n">${i.missing}</td><td class="n">${i.stale}</td>` +
        `<td class="err">${i.lastError ? `${esc(i.lastError)} <span class="muted">${esc(shortTime(i.lastErrorAt ?? ''))}</span>` : ''}</td></tr>`,
    )
    .join('');
  return `<h2>HAProxy instances</h2><table id="instances"><thead><tr><th>instance</th><th>state</th><th>pid</th><th>in sync</th><th>missing</th><th>stale</th><th>error</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** Active-active only: each replica, what it owns (with the fencing token) and the store's health. */
function replicasTable(m: StatusPageModel): string {
  if (!m.store && !m.replicas) return '';
  const s = m.store;
  const store = s
    ? `<p id="store" data-ok="${s.ok}">store (${esc(s.type)}): ${
        s.ok ? '<span class="badge b-up">reachable</span>' : `<span class="badge b-down">UNREACHABLE</span> <span class="err">since ${esc(shortTime(s.downSince ?? ''))}: ${esc(s.error ?? '')}</span>`
      }${s.roundTripMs !== undefined ? ` <span class="muted">last statement <span class="num" id="store-round-trip">${esc(s.roundTripMs)}</span> ms</span>` : ''}${
        s.ok && s.lastError ? ` <span class="muted">last error ${esc(shortTime(s.lastErrorAt ?? ''))}: ${esc(s.lastError)}</span>` : ''
      }</p>`
    : '';
  if (!m.replicas) return `<h2>Store</h2>${store}`;
  const badge: Record<string, string> = { up: 'up', gone: 'down', stopped: 'starting' };
  const rows = m.replicas
    .map(
      (r) =>
        `<tr class="r-${esc(r.state)}${r.state === 'gone' ? ' i-down' : ''}" data-replica="${esc(r.id)}"><td>${esc(r.id)}${r.self ? ' <span class="muted">(this one)</span>' : ''}</td>` +
        `<td>${esc(r.host)}</td><td>${esc(r.pid)}</td><td>${esc(r.api)}</td><td><span class="badge b-${badge[r.state]}">${esc(r.state === 'gone' ? 'GONE' : r.state)}</span></td>` +
        `<td>${esc(shortTime(r.upSince))}</td><td class="n">${(r.heartbeatAgeMs / 1000).toFixed(1)} s ago</td>` +
        `<td data-owns="${esc(r.owns.map((o) => o.instance).join(' '))}">${esc(r.owns.map((o) => `${o.instance} (token ${o.token})`).join(', ')) || '<span class="muted">none</span>'}</td>` +
        `<td>${r.clusterWork ? `yes <span class="muted">(token ${esc(r.clusterWork)})</span>` : ''}</td></tr>`,
    )
    .join('');
  return `<h2>Replicas</h2>${store}<table id="replicas"><thead><tr><th>replica</th><th>host</th><th>pid</th><th>API</th><th>state</th><th>up since (UTC)</th><th>last heartbeat</th><th>owns</th><th>cluster-wide work</th></tr></thead><tbody>${rows}</tbody></table>`;
}

const CHART = { width: 720, height: 190, top: 22, bottom: 36, left: 10, gap: 8 };

/** A bar per days-left bucket, as inline SVG (no script, no dependency). */
function chart(buckets: ExpiryBucket[], soonDays: number, matching: number): string {
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const slot = (CHART.width - CHART.left * 2) / buckets.length;
  const plot = CHART.height - CHART.top - CHART.bottom;
  const bars = buckets
    .map((b, i) => {
      const h = b.count === 0 ? 0 : Math.max(2, Math.round((b.count / max) * plot));
      const x = Math.round(CHART.left + i * slot + CHART.gap / 2);
      const w = Math.round(slot - CHART.gap);
      const y = CHART.top + plot - h;
      const mid = x + w / 2;
      return (
        `<g data-bucket="${esc(b.label)}" data-count="${b.count}"><title>${esc(`${b.label}: ${b.count}`)}</title>` +
        `<rect class="bar-${b.state}" x="${x}" y="${y}" width="${w}" height="${h}"></rect>` +
        `<text x="${mid}" y="${y - 5}" text-anchor="middle">${b.count}</text>` +
        `<text x="${mid}" y="${CHART.height - CHART.bottom + 16}" text-anchor="middle">${esc(b.label)}</text></g>`
      );
    })
    .join('');
  return `<h2>Expiry timeline <span class="muted">(the ${matching} matching certificates by days left; amber = under ${soonDays} days)</span></h2>
<svg class="timeline" id="timeline" role="img" aria-label="certificates by days left" width="${CHART.width}" height="${CHART.height}" viewBox="0 0 ${CHART.width} ${CHART.height}">${bars}
<text x="${CHART.width - CHART.left}" y="${CHART.height - 6}" text-anchor="end">days left</text></svg>`;
}

function options(values: readonly string[], selected: string | undefined, labels?: Record<string, string>): string {
  return ['<option value="">any</option>', ...values.map((v) => `<option value="${esc(v)}"${v === selected ? ' selected' : ''}>${esc(labels?.[v] ?? v)}</option>`)].join('');
}

function filterForm(m: StatusPageModel): string {
  const q = m.query;
  const pers = [...new Set([20, PER_PAGE_DEFAULT, 100, 200, PER_PAGE_MAX, q.per])].sort((a, b) => a - b);
  return `<h2>Certificates</h2><form class="filter" id="filter" method="get" action="${STATUS_PATHS.page}">
<label>name contains<input type="search" name="q" value="${esc(q.q)}" placeholder="example.com"></label>
<label>state<select name="state">${options(CERT_STATES, q.state, STATE_LABEL)}</select></label>
<label>issuer<select name="issuer">${options(m.issuers, q.issuer)}</select></label>
<label>origin<select name="origin">${options(CERT_ORIGINS, q.origin)}</select></label>
<label>per page<select name="per">${pers.map((p) => `<option${p === q.per ? ' selected' : ''}>${p}</option>`).join('')}</select></label>
${q.refresh !== REFRESH_DEFAULT_S ? `<input type="hidden" name="refresh" value="${q.refresh}">` : ''}<button type="submit">show</button> <a href="${STATUS_PATHS.page}">reset</a></form>`;
}

function certTable(m: StatusPageModel): string {
  const q = m.query;
  const first = m.matching === 0 ? 0 : (q.page - 1) * q.per + 1;
  const last = Math.min(m.matching, q.page * q.per);
  const nav = `<nav class="pages" aria-label="pages">
${q.page > 1 ? `<a rel="prev" id="prev-page" href="${esc(href({ ...q, page: q.page - 1 }))}">← previous</a>` : ''}
<span id="page-info">${first}–${last} of <span class="num" id="matching">${m.matching}</span> matching (of ${m.summary.certs.total}) · page ${q.page} of ${m.pages}</span>
${q.page < m.pages ? `<a rel="next" id="next-page" href="${esc(href({ ...q, page: q.page + 1 }))}">next →</a>` : ''}</nav>`;
  const rows = m.rows.map(certRow).join('');
  return `${nav}<table id="certs"><thead><tr><th>names</th><th>state</th><th>days left</th><th>not after (UTC)</th><th>issuer</th><th>origin</th><th>next renewal</th><th>deployed on</th></tr></thead>
<tbody>${rows || '<tr><td colspan="8" class="muted">no certificate matches</td></tr>'}</tbody></table>${m.pages > 1 ? nav : ''}`;
}

function certRow(r: CertRow): string {
  const renewal = r.renewedByCertd
    ? esc(r.nextRenewalAt ? shortTime(r.nextRenewalAt) : '')
    : `<span class="badge b-notrenewed" title="imported or from a source: renewed where it comes from">not renewed by certd</span>`;
  return (
    `<tr class="s-${r.state}" data-id="${esc(r.id)}" data-state="${r.state}"><td>${esc(r.names.join(', '))}</td>` +
    `<td><span class="badge b-${r.state}">${esc(STATE_LABEL[r.state])}</span>${r.failedAttempts > 0 ? ` <span class="err">${r.failedAttempts}× failed</span>` : ''}</td>` +
    `<td class="n">${r.daysLeft}</td><td>${esc(shortTime(r.notAfter))}</td><td>${esc(r.issuer)}</td><td>${esc(r.origin)}</td>` +
    `<td>${renewal}</td><td>${esc(r.deployedOn.join(', '))}</td></tr>`
  );
}

function shortTime(iso: string): string {
  return iso.slice(0, 16).replace('T', ' ');
}

/** The page's URL for a query, defaults left out. */
export function href(q: StatusQuery): string {
  const p = new URLSearchParams();
  if (q.q) p.set('q', q.q);
  if (q.state) p.set('state', q.state);
  if (q.issuer) p.set('issuer', q.issuer);
  if (q.origin) p.set('origin', q.origin);
  if (q.page > 1) p.set('page', String(q.page));
  if (q.per !== PER_PAGE_DEFAULT) p.set('per', String(q.per));
  if (q.refresh !== REFRESH_DEFAULT_S) p.set('refresh', String(q.refresh));
  const s = p.toString();
  return s ? `${STATUS_PATHS.page}?${s}` : STATUS_PATHS.page;
}

/**
 * Fetches the same URL and swaps #content and the time in, keeping the operator's place; skipped
 * while the filter form has focus; a lost session (401) shows the login page. The next fetch is
 * timed from the end of the last one, so a slow answer never piles requests up. Paused state is
 * kept per tab.
 */
function refreshScript(seconds: number): string {
  return `(() => {
const every = ${seconds * 1000}, btn = document.getElementById('refresh-toggle');
let paused = sessionStorage.getItem('certd-refresh-paused') === '1';
const show = () => { btn.textContent = paused ? 'resume' : 'pause'; btn.setAttribute('aria-pressed', String(paused)); };
btn.addEventListener('click', () => { paused = !paused; sessionStorage.setItem('certd-refresh-paused', paused ? '1' : '0'); show(); });
show();
const tick = async () => {
  try {
    if (paused || document.activeElement?.closest('#filter')) return;
    const res = await fetch(location.href, { headers: { accept: 'text/html' }, credentials: 'same-origin' });
    if (res.status === 401) return location.reload();
    if (!res.ok) return;
    const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
    for (const id of ['content', 'generated-at']) {
      const fresh = doc.getElementById(id), old = document.getElementById(id);
      if (fresh && old) old.replaceWith(document.importNode(fresh, true));
    }
    document.title = doc.title;
  } catch { /* the next tick tries again */ } finally { setTimeout(tick, every); }
};
setTimeout(tick, every);
})();`;
}
