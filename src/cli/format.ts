import type { CertView } from '../service/cert-service.js';

/** Renders rows as an aligned text table with a header. Pure. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** `list`: one line per certificate, soonest expiry first, days left at a glance. */
export function formatCertList(certs: CertView[], now = Date.now()): string {
  if (certs.length === 0) return 'no certificates yet: `haproxy-certd issue NAME` adds one';
  const rows = [...certs]
    .sort((a, b) => a.notAfter.localeCompare(b.notAfter))
    .map((c) => {
      const days = Math.floor((Date.parse(c.notAfter) - now) / 86_400_000);
      return [
        c.names.join(', '),
        c.issuer,
        c.notAfter.slice(0, 16).replace('T', ' '),
        days < 0 ? 'EXPIRED' : `${days}d`,
        c.deployedOn.length > 0 ? c.deployedOn.join(', ') : '-',
      ];
    });
  return table(['NAMES', 'ISSUER', 'NOT AFTER (UTC)', 'LEFT', 'DEPLOYED ON'], rows);
}
