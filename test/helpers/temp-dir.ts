import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/*
 * Temp directories of a test file, removed when its process exits, whatever the exit path: after
 * every after() hook, so no server a hook stops is still writing into one when it goes (the order
 * of hooks need not know about it). Like children.ts, a net under the tests, not a step in them.
 */
const made: string[] = [];
let hooked = false;

function removeAll(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A new directory under the OS temp dir (`<prefix>XXXXXX`), removed when the test process exits. */
export function tempDir(prefix: string): string {
  if (!hooked) process.once('exit', removeAll);
  hooked = true;
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
