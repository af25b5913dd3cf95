import type { DnsSubtrees } from '../crypto/name-constraints.js';

/** A policy pattern the name constraints cannot say exactly, and what was done instead. */
export interface Inexact {
  pattern: string;
  list: 'allow' | 'deny';
  why: string;
}

export interface ForgeConstraints extends DnsSubtrees {
  /** For the log at start: where the certificate allows more than the policy (the policy still decides every name). */
  inexact: Inexact[];
}

/**
 * The forge intermediate's DNS subtrees from onDemand.allow / deny. `*.gen.test` → `.gen.test`
 * (every name below, none at gen.test: the pattern's own meaning, and how OpenSSL and Go read a
 * leading dot); an exact name → that name, which RFC 5280 widens to the names below it too.
 * Deny: `*.x` → excluded `.x` when it overlaps a permitted subtree (elsewhere nothing is
 * permitted anyway); an exact denied name is NOT excluded, since excluding it would also shut out the
 * allowed names below it — the daemon refuses it, so it never reaches the forge. Pure.
 */
export function forgeConstraints(allow: readonly string[], deny: readonly string[]): ForgeConstraints {
  const inexact: Inexact[] = [];
  const permitted = unique(allow.map(subtreeOf));
  for (const p of allow) {
    if (!p.startsWith('*.')) inexact.push({ pattern: p, list: 'allow', why: 'an exact name permits the names below it as well' });
  }
  const excluded: string[] = [];
  for (const p of deny) {
    if (!p.startsWith('*.')) {
      inexact.push({ pattern: p, list: 'deny', why: 'an exact name cannot be excluded without the names below it; the daemon refuses it' });
      continue;
    }
    const base = subtreeOf(p);
    if (permitted.some((q) => inside(base, q) || inside(q, base))) excluded.push(base);
  }
  // A permitted subtree wholly inside an excluded one permits nothing: dropped, as long as one stays.
  const kept = permitted.filter((q) => !excluded.some((x) => inside(q, x)));
  return { permitted: kept.length ? kept : permitted, excluded: unique(excluded), inexact };
}

/** Whether a name the policy allows would verify under the constraints (the unit tests' oracle). Pure. */
export function permittedBy(c: DnsSubtrees, name: string): boolean {
  const under = (base: string) => (base.startsWith('.') ? name.endsWith(base) : name === base || name.endsWith(`.${base}`));
  return c.permitted.some(under) && !c.excluded.some(under);
}

const subtreeOf = (pattern: string) => (pattern.startsWith('*.') ? pattern.slice(1) : pattern);

/** Whether every name of subtree `a` is in subtree `b` (`.y`: strictly below y; `y`: y and below). */
function inside(a: string, b: string): boolean {
  const z = a.replace(/^\./, '');
  const y = b.replace(/^\./, '');
  const below = z.endsWith(`.${y}`);
  if (b.startsWith('.') && !a.startsWith('.')) return below;
  return below || z === y;
}

const unique = (xs: string[]) => [...new Set(xs)];
