import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createApi } from '../src/api/server.js';
import type { Metrics } from '../src/api/metrics.js';
import { silentLogger } from '../src/core/log.js';
import type { CertService } from '../src/service/cert-service.js';

const read = (path: string) => readFile(new URL(`../${path}`, import.meta.url), 'utf8');

/** "GET /v1/certs/:id" for every route the app registers (middleware, method ALL, left out). */
function registeredRoutes(): string[] {
  // Routes are registered when the app is built; no handler runs, so the service is never used.
  const app = createApi({ service: {} as CertService, metrics: {} as Metrics, token: 'unused', log: silentLogger });
  return [...new Set(app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path}`))];
}

test('docs/api.md has a section for every route the API registers, and none it does not', async () => {
  const doc = await read('docs/api.md');
  const documented = [...doc.matchAll(/^### ([A-Z]+ \/\S*)$/gm)].map((m) => m[1]!);
  const routes = registeredRoutes();
  // POST /ondemand and /ondemand/grant are answered ahead of the app (plain node:http, see listenApi).
  const ahead = [...(await read('src/api/server.ts')).matchAll(/req\.method === '([A-Z]+)' && req\.url === '([^']+)'/g)].map((m) => `${m[1]} ${m[2]}`);
  assert.deepEqual(ahead, ['POST /ondemand', 'POST /ondemand/grant']);
  assert.ok(routes.includes('POST /v1/renew') && routes.length >= 9, `routes found: ${routes.join(', ')}`);
  const missing = [...routes, ...ahead].filter((r) => !documented.includes(r));
  assert.deepEqual(missing, [], 'document these in docs/api.md (a "### METHOD /path" section each)');
  const stale = documented.filter((d) => !routes.includes(d) && !ahead.includes(d));
  assert.deepEqual(stale, [], 'docs/api.md documents routes the API no longer has');
});

test('docs/api.md lists every error category with the status and exit code outcomeOf gives it', async () => {
  const { outcomeFor } = await import('../src/core/errors.js');
  const doc = await read('docs/api.md');
  for (const category of ['input', 'too-large', 'auth', 'not-found', 'conflict', 'rate-limited', 'upstream', 'unavailable', 'storage-full', 'internal'] as const) {
    const { status, exit } = outcomeFor(category);
    assert.match(doc, new RegExp(`^\\| ${category} \\| ${status} \\| ${exit} \\|`, 'm'), category);
  }
});
