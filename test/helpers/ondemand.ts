import type { Stack } from './stack.js';

/** The sum of every series of `re` (its first group) on the stack daemon's /metrics. */
export async function metric(stack: Stack, re: RegExp): Promise<number> {
  const text = await (await fetch(`${stack.daemon.api.url}/metrics`)).text();
  return [...text.matchAll(new RegExp(re, 'gm'))].reduce((sum, m) => sum + Number(m[1]), 0);
}

/** Certificates the local CA "internal" issued, as the daemon counts them. */
export const issuedTotal = (s: Stack) => metric(s, /^certd_issue_total\{issuer="internal",result="ok"\} (\d+)$/);

/** On-demand decisions of every status and reason. */
export const decisions = (s: Stack) => metric(s, /^certd_ondemand_decisions_total\{[^}]*\} (\d+)$/);

/** Runs `fn` over items with at most `limit` in flight; results in the items' order. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}
