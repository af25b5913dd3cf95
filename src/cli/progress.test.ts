import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Progress } from './progress.js';

const sink = (isTTY: boolean, columns?: number) => {
  const out = { isTTY, columns, text: '', write: (t: string) => (out.text += t) };
  return out;
};

test('on a terminal the counter is redrawn in place, kept lines go above it, clear removes it', () => {
  const out = sink(true, 40);
  const p = new Progress(out);
  p.step(1, 898, 'a.test: renewed');
  p.step(2, 898, 'b.test: renewed');
  p.keep('c.test: FAILED: no answer');
  p.step(3, 898, 'c.test: failed');
  p.clear();
  assert.equal(out.text, '\r\x1b[K1/898 a.test: renewed\r\x1b[K2/898 b.test: renewed\r\x1b[Kc.test: FAILED: no answer\n\r\x1b[K3/898 c.test: failed\r\x1b[K');
  assert.doesNotMatch(out.text, /\n.*\n/, 'only the kept line ends in a newline');
});

test('on a terminal a long counter line is cut to the width, so it never wraps', () => {
  const out = sink(true, 20);
  new Progress(out).step(312, 898, 'a-very-long-name.example.com: renewed');
  const line = out.text.replace('\r\x1b[K', '');
  assert.ok(line.length < 20, line);
  assert.match(line, /^312\/898 a-very-lon.*…$/);
});

test('elsewhere every step is its own plain line, no control characters', () => {
  const out = sink(false);
  const p = new Progress(out);
  p.step(1, 2, 'a.test: issued');
  p.step(2, 2, 'b.test: FAILED: x');
  p.clear();
  assert.equal(out.text, '1/2 a.test: issued\n2/2 b.test: FAILED: x\n');
});
