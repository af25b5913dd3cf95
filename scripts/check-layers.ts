/**
 * Checks the import graph of src/: no import from a lower layer to a higher one, and no circles.
 * The layers, lowest first (one rank per line, the same rank may import each other):
 *   core < crypto, store < issuers, haproxy < service, config < sources, challenges
 *   < ondemand, renew < api < daemon < cli
 * `src/index.ts` is the package's public entry and may import anything. Every import counts,
 * type-only ones and `export … from` included (a type import still ties the modules together).
 * `node --import tsx scripts/check-layers.ts` prints each violation; test/layers.test.ts runs it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const LAYERS: readonly (readonly string[])[] = [
  ['core'],
  ['crypto', 'store'],
  ['issuers', 'haproxy'],
  ['service', 'config'],
  ['sources', 'challenges'],
  ['ondemand', 'renew'],
  ['api'],
  ['daemon'],
  ['cli'],
];

/** The public entry: outside the layers. */
const ENTRY = 'index.ts';

export const SRC = fileURLToPath(new URL('../src', import.meta.url));

/** A module's path relative to src/, with forward slashes (`haproxy/runtime/client.ts`). */
export type ModulePath = string;

export type Violation =
  | { kind: 'layer'; from: ModulePath; to: ModulePath; fromLayer: string; toLayer: string }
  | { kind: 'circle'; cycle: ModulePath[] };

/** `core` for `core/async.ts`; undefined for the entry (and anything not in a known layer). */
export function layerOf(path: ModulePath): { name: string; rank: number } | undefined {
  const top = path.split('/')[0]!;
  const rank = LAYERS.findIndex((names) => names.includes(top));
  return rank < 0 ? undefined : { name: top, rank };
}

function listTs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = join(dir, e.name);
    if (e.isDirectory()) return listTs(full);
    return e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [full] : [];
  });
}

/** Relative imports of one file (static, dynamic, `export … from`), resolved to src/ paths. */
export function importsOf(file: string, root = SRC): ModulePath[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  const out = new Set<ModulePath>();
  for (const { fileName } of info.importedFiles) {
    if (!fileName.startsWith('.')) continue; // packages and node: builtins
    // ESM sources import `./x.js` for `./x.ts`.
    const target = resolve(dirname(file), fileName.replace(/\.js$/, '.ts'));
    out.add(relative(root, target).split(sep).join('/'));
  }
  return [...out];
}

/** The graph of src/: each module and what it imports inside src/. */
export function importGraph(root = SRC): Map<ModulePath, ModulePath[]> {
  const graph = new Map<ModulePath, ModulePath[]>();
  for (const file of listTs(root).sort()) {
    graph.set(relative(root, file).split(sep).join('/'), importsOf(file, root));
  }
  return graph;
}

/** Strongly connected components of more than one module (or a module importing itself). */
function circles(graph: Map<ModulePath, ModulePath[]>): ModulePath[][] {
  // Tarjan's algorithm; the graph has a few hundred nodes, recursion depth is fine.
  let index = 0;
  const indexOf = new Map<ModulePath, number>();
  const low = new Map<ModulePath, number>();
  const stack: ModulePath[] = [];
  const onStack = new Set<ModulePath>();
  const found: ModulePath[][] = [];
  const visit = (v: ModulePath) => {
    indexOf.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!indexOf.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, indexOf.get(w)!));
      }
    }
    if (low.get(v) === indexOf.get(v)) {
      const component: ModulePath[] = [];
      let w: ModulePath;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!indexOf.has(v)) visit(v);
  return found;
}

/** Every layer violation and every circle in the graph, in a stable order. */
export function checkLayers(graph = importGraph()): Violation[] {
  const out: Violation[] = [];
  for (const [from, imports] of graph) {
    if (from === ENTRY) continue;
    const fromLayer = layerOf(from);
    for (const to of imports) {
      const toLayer = layerOf(to);
      if (!fromLayer || !toLayer || toLayer.rank <= fromLayer.rank) continue;
      out.push({ kind: 'layer', from, to, fromLayer: fromLayer.name, toLayer: toLayer.name });
    }
  }
  for (const component of circles(graph)) out.push({ kind: 'circle', cycle: cycleThrough(graph, component) });
  return out;
}

/** A shortest import path from the component's first module back to itself, inside the component. */
function cycleThrough(graph: Map<ModulePath, ModulePath[]>, component: ModulePath[]): ModulePath[] {
  const start = component[0]!;
  const inside = new Set(component);
  const cameFrom = new Map<ModulePath, ModulePath>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i]!;
    for (const w of graph.get(v) ?? []) {
      if (!inside.has(w)) continue;
      if (w === start) {
        const path = [v];
        while (path[0] !== start) path.unshift(cameFrom.get(path[0]!)!);
        return path;
      }
      if (!cameFrom.has(w)) {
        cameFrom.set(w, v);
        queue.push(w);
      }
    }
  }
  return component;
}

/** `a.ts -> b.ts (layer core < layer store)`, or `circle: a.ts -> b.ts -> a.ts`. */
export function formatViolation(v: Violation): string {
  if (v.kind === 'layer') return `${v.from} -> ${v.to} (layer ${v.fromLayer} < layer ${v.toLayer})`;
  return `circle: ${[...v.cycle, v.cycle[0]].join(' -> ')}`;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const found = checkLayers();
  for (const v of found) console.log(formatViolation(v));
  console.log(found.length === 0 ? 'layers: ok' : `layers: ${found.length} violation(s)`);
  process.exitCode = found.length === 0 ? 0 : 1;
}
