import { test } from 'node:test';
import assert from 'node:assert/strict';
import { arrayChunk, parseStreamQuery } from './cert-listing.js';

test('arrayChunk: chunks joined inside [ ] make the text JSON.stringify(array, null, 2) makes', () => {
  const items = [{ id: 'a', names: ['a', 'b'], deployedOn: [], n: 1, q: 'quote " and \\ and \n' }, { id: 'b', nested: { x: [1, { y: 2 }] } }, { id: 'c' }];
  for (const split of [1, 2]) {
    const text = `[\n${[arrayChunk(items.slice(0, split)), arrayChunk(items.slice(split))].join(',\n')}\n]`;
    assert.equal(text, JSON.stringify(items, null, 2));
  }
});

test('parseStreamQuery: undefined for a page; the filters for stream=array; limit/after and unknown forms refused', () => {
  assert.equal(parseStreamQuery({ limit: '10' }), undefined);
  assert.deepEqual(parseStreamQuery({ stream: 'array', origin: 'import' }), { filter: { origin: 'import' } });
  assert.throws(() => parseStreamQuery({ stream: 'array', after: 'x' }), /leave out limit and after/);
  assert.throws(() => parseStreamQuery({ stream: 'lines' }), /stream "lines" is not known/);
  assert.throws(() => parseStreamQuery({ stream: 'array', page: '2' }), /unknown query parameter/);
});
