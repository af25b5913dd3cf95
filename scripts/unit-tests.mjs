// `npm run test:unit` (node --import tsx scripts/unit-tests.mjs): every test file that starts no
// process, run without the bootstrap, in PARTS processes that each import their share of the
// files: the src modules they share load once per process (8 s of CPU instead of 18 s for one
// process per file, measured). `npm test` still runs each file in its own process.
// The set is computed, not listed: a file is a unit test when nothing it imports, directly or
// through helpers and src modules, imports node:child_process (HAProxy, Pebble, bind9, openssl,
// the CLI all start that way) or playwright-core. A new pure test joins by itself; a helper that
// starts using a program takes its users out by itself. `--list` prints the files instead.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const STARTS_PROCESSES = /^(node:)?child_process$|^playwright-core$/;
const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm;

function testFiles(dir) {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile() && d.name.endsWith('.test.ts'))
    .map((d) => relative(root, join(d.parentPath ?? d.path, d.name)));
}

const importsCache = new Map();
/** A module's imports: local ones as absolute .ts paths, packages as written. */
function importsOf(file) {
  let list = importsCache.get(file);
  if (!list) {
    list = [...readFileSync(file, 'utf8').matchAll(IMPORT)]
      .map((m) => m[1] ?? m[2] ?? m[3])
      .map((spec) => (spec.startsWith('.') ? resolve(dirname(file), spec.replace(/\.js$/, '.ts')) : spec));
    importsCache.set(file, list);
  }
  return list;
}

/** Whether this module, or anything it imports, can start a process. */
function startsProcesses(file) {
  const seen = new Set([file]);
  const todo = [file];
  while (todo.length > 0) {
    for (const spec of importsOf(todo.pop())) {
      if (STARTS_PROCESSES.test(spec)) return true;
      if (spec.startsWith('/') && !seen.has(spec)) {
        seen.add(spec);
        todo.push(spec);
      }
    }
  }
  return false;
}

const unit = [...testFiles('src'), ...testFiles('test')].filter((f) => !startsProcesses(join(root, f))).sort();
const PARTS = 2;
const part = /^--part=(\d+)$/.exec(process.argv[2] ?? '')?.[1];
if (process.argv.includes('--list')) {
  console.log(unit.join('\n'));
} else if (part === undefined) {
  // One process per core, each importing every PARTS-th file: the tests' own waits overlap.
  const runs = Array.from({ length: PARTS }, (_, i) => {
    const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), `--part=${i}`], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    return new Promise((resolve) => child.on('close', (code) => resolve({ code, out })));
  });
  const results = await Promise.all(runs);
  for (const { out } of results) process.stdout.write(out);
  const failed = results.filter((r) => r.code !== 0).length;
  console.log(`# test:unit: ${unit.length} files in ${PARTS} processes${failed ? `, ${failed} failed` : ''}`);
  process.exitCode = failed ? 1 : 0;
} else {
  // No --test here, so no --test-timeout either: a unit test that hangs fails the run instead.
  const WATCHDOG_MS = 120_000;
  setTimeout(() => {
    console.error(`test:unit: still running after ${WATCHDOG_MS / 1000} s: a test hangs`);
    process.exit(1);
  }, WATCHDOG_MS).unref();
  for (const file of unit.filter((_, i) => i % PARTS === Number(part))) await import(join(root, file));
}
