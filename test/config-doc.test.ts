import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { CONFIG_DOC, renderConfigDoc } from '../scripts/config-doc.js';

test('docs/config.md is current with the config schema (every key documented)', async () => {
  // renderConfigDoc throws naming any key without a description.
  const expected = renderConfigDoc();
  const actual = await readFile(CONFIG_DOC, 'utf8').catch(() => '');
  assert.ok(actual === expected, 'docs/config.md is not what the schema says: run `npm run docs:config` and commit it');
  for (const key of ['rootCert', 'preferredChain', 'askTimeout', 'perClientPerMinute', 'reconcileEvery', 'clientCa']) {
    assert.match(actual, new RegExp(`\\| \`${key}\` \\|`), key);
  }
});
