// A node:test reporter for scripts/test.sh: one line per test file with its pass and fail counts
// (suites not counted, like node's own summary), for the per-version table.
import { relative } from 'node:path';

export default async function* testFilesReporter(source) {
  const files = new Map();
  for await (const { type, data } of source) {
    if ((type !== 'test:pass' && type !== 'test:fail') || data.details?.type === 'suite' || !data.file) continue;
    const counts = files.get(data.file) ?? { pass: 0, fail: 0 };
    // A todo or skipped test passes without running; node counts it apart, so does this.
    if (data.skip === undefined && data.todo === undefined) counts[type === 'test:pass' ? 'pass' : 'fail']++;
    files.set(data.file, counts);
  }
  for (const [file, c] of [...files].sort(([a], [b]) => a.localeCompare(b))) {
    yield `${c.fail > 0 ? 'FAIL' : 'ok  '} ${relative(process.cwd(), file)}: ${c.pass} pass, ${c.fail} fail\n`;
  }
}
