/** What HAProxy's Lua sends with a grant call (text lines: `grantee ID`, `used N`, `name AGE_MS SNI`). */
export interface GrantReport {
  grantee: string;
  used: number;
  names: { name: string; ageMs: number }[];
}

/** The most names one report may carry (the Lua keeps at most 1,000 unreported). */
const MAX_NAMES = 1_000;

/**
 * Parses a grant report; anything malformed is dropped line by line (names are validated again
 * by the caller), never thrown on. A report with no valid grantee is "anonymous" and gets no refund. Pure.
 */
export function parseGrantReport(body: string): GrantReport {
  const report: GrantReport = { grantee: 'anonymous', used: 0, names: [] };
  for (const line of body.split('\n')) {
    const grantee = /^grantee ([0-9a-f]{1,32})$/.exec(line);
    if (grantee) report.grantee = grantee[1]!;
    const used = /^used (\d{1,6})$/.exec(line);
    if (used) report.used = Number(used[1]);
    // A negative age (a Lua older than its fix, HAProxy threads' clocks apart) is an age of 0: the
    // name was still spent, and dropping its line would leave a forged name never issued.
    const name = /^name (-?\d{1,9}) (\S{1,253})$/.exec(line);
    if (name && report.names.length < MAX_NAMES) report.names.push({ name: name[2]!, ageMs: Math.max(0, Number(name[1])) });
  }
  return report;
}
