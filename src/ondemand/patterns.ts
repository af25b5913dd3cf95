/**
 * Name patterns for on-demand policy. `www.example.com` matches itself; `*.apps.example.com`
 * matches any name below apps.example.com at any depth (a.apps…, x.y.apps…) but not
 * apps.example.com itself — internal domains with many sub-levels are the point of on-demand.
 * Names and patterns are already validated and lowercase. Pure.
 */
export function matchesPattern(name: string, pattern: string): boolean {
  if (pattern.startsWith('*.')) return name.endsWith(pattern.slice(1)) && name.length > pattern.length - 1;
  return name === pattern;
}

export function matchesAny(name: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => matchesPattern(name, p));
}
