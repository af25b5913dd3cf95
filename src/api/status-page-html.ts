/**
 * What every status-page response shares: escaping, the page frame and its stylesheet, and the
 * security headers. Names come from SNI and from imported certificates: everything variable goes
 * through esc(), and the CSP lets only this response's own script and style run.
 */
import { randomBytes } from 'node:crypto';

export const esc = (s: unknown): string => String(s).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** A fresh nonce per response for the CSP. */
export function newNonce(): string {
  return randomBytes(16).toString('base64');
}

export function pageHeaders(nonce: string): Record<string, string> {
  return {
    'content-security-policy': `default-src 'none'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
  };
}

const CSS = `
:root{--red:#b3261e;--amber:#8a5a00;--amber-bg:#fff4d6;--green:#1e6b2e;--blue:#1f4fa3;--grey:#666;--line:#ddd}
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{display:flex;gap:1em;align-items:center;flex-wrap:wrap;padding:.6em 1.5em;background:#222;color:#eee}
header h1{font-size:1.1em;margin:0 1em 0 0}header form{margin:0}header button{font:inherit}
main{padding:1em 1.5em;max-width:1400px}
h2{font-size:1.05em;margin:1.4em 0 .5em}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:.6em 1em;min-width:14em}
.card h3{margin:0 0 .3em;font-size:.95em;color:var(--grey);font-weight:600}.card ul{margin:0;padding-left:1.1em}
.num{font-weight:700;font-variant-numeric:tabular-nums}
table{border-collapse:collapse;background:#fff;width:100%}td,th{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:0 .5em;border-radius:3px;font-size:.85em;font-weight:600;white-space:nowrap}
.b-up,.b-valid{color:var(--green);border:1px solid var(--green)}
.b-down,.b-expired{color:#fff;background:var(--red)}
.b-misconfigured{color:#fff;background:#6a1b9a}
.b-starting,.b-pending{color:var(--blue);border:1px dashed var(--blue)}
.b-soon{color:var(--amber);background:var(--amber-bg);border:1px solid var(--amber)}
.b-failing{color:var(--red);border:2px solid var(--red)}
.b-notrenewed{color:var(--grey);border:1px dotted var(--grey);font-weight:400}
tr.s-expired td,tr.i-down td,tr.i-misconfigured td{background:#fdecea}tr.s-soon td{background:var(--amber-bg)}tr.s-failing td{background:#fff0f0}
.err{color:var(--red)}.muted{color:var(--grey)}
form.filter{display:flex;gap:.6em;flex-wrap:wrap;align-items:end;margin:.5em 0}form.filter label{display:flex;flex-direction:column;font-size:.85em;color:var(--grey)}
form.filter input,form.filter select,form.filter button{font:inherit;padding:2px 4px}
nav.pages{margin:.6em 0;display:flex;gap:1em;align-items:center}
svg.timeline{background:#fff;border:1px solid var(--line);border-radius:6px}
svg .bar-expired{fill:var(--red)}svg .bar-soon{fill:#e0a100}svg .bar-ok{fill:#5b9b6b}svg text{font:12px system-ui,sans-serif;fill:#333}
.login{max-width:28em;margin:4em auto;background:#fff;border:1px solid var(--line);border-radius:6px;padding:1.5em}
.login input{font:inherit;width:100%;box-sizing:border-box;padding:4px;margin:.4em 0 1em}.login .msg{padding:.5em;border-radius:4px;background:#fdecea;color:var(--red)}
.login .msg.info{background:#eef3fb;color:var(--blue)}
`;

/** A whole HTML document around `body`; `script` (optional) runs under the response's nonce. */
export function page(o: { title: string; nonce: string; header?: string; body: string; script?: string }): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(o.title)}</title><style nonce="${o.nonce}">${CSS}</style></head><body>
${o.header ?? ''}${o.body}${o.script ? `<script nonce="${o.nonce}">${o.script}</script>` : ''}</body></html>`;
}
