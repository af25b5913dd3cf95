import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkLayers, formatViolation, importGraph, layerOf } from '../scripts/check-layers.js';

test('the import graph of src/ points one way: no import from a lower layer to a higher one, no circles', () => {
  const found = checkLayers().map(formatViolation);
  assert.deepEqual(found, [], `layer violations (run \`node --import tsx scripts/check-layers.ts\`):\n${found.join('\n')}`);
});

test('the layer check sees what it must: upward imports, circles, type imports and export-from', () => {
  const graph = new Map([
    ['core/a.ts', ['store/b.ts']],
    ['store/b.ts', ['core/a.ts']],
    ['cli/x.ts', ['core/a.ts', 'daemon/y.ts']],
    ['daemon/y.ts', []],
    ['index.ts', ['cli/x.ts']],
  ]);
  assert.deepEqual(checkLayers(graph).map(formatViolation), [
    'core/a.ts -> store/b.ts (layer core < layer store)',
    'circle: core/a.ts -> store/b.ts -> core/a.ts',
  ]);
  assert.deepEqual(layerOf('haproxy/runtime/client.ts'), { name: 'haproxy', rank: 2 });
  assert.equal(layerOf('index.ts'), undefined);
  // The real graph: `import type` and `export … from` edges are in it.
  const real = importGraph();
  assert.ok(real.get('index.ts')?.includes('core/errors.ts'), 'export * from');
  assert.ok(real.get('index.ts')?.includes('store/store.ts'), 'export type … from');
});
