import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { RuntimeSession } from '../src/haproxy/runtime/session.js';
import { tempDir } from './helpers/temp-dir.js';

/*
 * How replies are cut out of the byte stream, whatever the chunks the socket delivers: a prompt
 * split across two chunks, several replies in one chunk. A loopback unix socket that answers in
 * prompt mode, each reply sent one byte per write (what HAProxy says is tested against HAProxy
 * in runtime.test.ts; this is only the framing).
 */
test('replies are framed the same when every byte arrives alone, and when pipelined replies share a chunk', async () => {
  const path = join(tempDir('certd-framing-'), 'cli.sock');
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    let buffered = '';
    s.on('data', async (d) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      const replies = lines.map((line) => (line === 'prompt' ? '\n> ' : line === 'both' ? `a\nb\n\n> c\n\n> ` : line === 'many' ? `${'x'.repeat(50)}\n\n> ` : ''));
      const text = replies.join('');
      if (text.startsWith('a\n')) return void s.write(text); // two replies in one chunk
      for (const ch of text) await new Promise<void>((r) => s.write(ch, () => r()));
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  try {
    const session = await RuntimeSession.open({ kind: 'unix', path });
    try {
      assert.equal(await session.execute('many'), 'x'.repeat(50));
      assert.deepEqual(await session.executeAll([{ line: 'both' }, { line: 'ignored' }]), ['a\nb', 'c']);
      assert.equal(await session.execute('many'), 'x'.repeat(50), 'the session is still in step');
    } finally {
      session.destroy();
    }
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
