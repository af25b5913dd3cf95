import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { DaemonClient } from '../src/cli/daemon-client.js';
import { configFromObject } from '../src/config/load.js';
import { certFacts } from '../src/core/bundle.js';
import { silentLogger } from '../src/core/log.js';
import { Daemon } from '../src/daemon/daemon.js';
import type { CertMeta } from '../src/store/store.js';
import { selfSigned } from './helpers/certs.js';
import { freePort } from './helpers/ports.js';
import { eventually, startStack, type Stack } from './helpers/stack.js';
import { seedCerts, seededName } from './helpers/status-certs.js';

/** Debian's chromium (scripts/bootstrap.sh installs it with CERTD_BOOTSTRAP_TEST=1). */
const CHROMIUM = process.env.CERTD_CHROMIUM ?? '/usr/bin/chromium';
const DAY_MS = 86_400_000;
/** Generous: two shared cores, a browser, a daemon and HAProxy. */
const UI_TIMEOUT_MS = 60_000;

async function launch(): Promise<Browser> {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run CERTD_BOOTSTRAP_TEST=1 bash scripts/bootstrap.sh`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: UI_TIMEOUT_MS });
}

/** The numbers of the summary banner, by their data-summary key. */
async function summary(page: Page): Promise<Record<string, number>> {
  return page.$$eval('[data-summary]', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-summary'), Number(e.textContent)])));
}

async function rowIds(page: Page): Promise<string[]> {
  return page.$$eval('#certs tbody tr[data-id]', (rows) => rows.map((r) => r.getAttribute('data-id')!));
}

/** A certificate written straight into the store: what no API would take (hostile names, any dates). */
async function storeCert(stack: Stack, meta: Partial<CertMeta> & Pick<CertMeta, 'id' | 'names' | 'origin'>, notAfter: Date): Promise<void> {
  const cert = await selfSigned(meta.id, { notBefore: new Date(notAfter.getTime() - 30 * DAY_MS), notAfter });
  const facts = certFacts(cert.certPem);
  await stack.daemon.store.saveCert({
    certPem: cert.certPem,
    keyPem: cert.keyPem,
    meta: { issuer: 'import', notBefore: facts.notBefore, notAfter: facts.notAfter, serial: facts.serial, fingerprint: facts.fingerprint, updatedAt: new Date().toISOString(), ...meta },
  });
}

async function login(page: Page, base: string, token: string, path = '/status'): Promise<void> {
  await page.goto(`${base}${path}`);
  await page.fill('#token', token);
  await Promise.all([page.waitForURL((u) => u.pathname === '/status', { timeout: UI_TIMEOUT_MS }), page.click('button[type=submit]')]);
}

const HOSTILE_NAME = '<img src=x onerror="window.__pwned=1">';
const HOSTILE_SCRIPT = '"><script>window.__pwned=2</script>';

describe('status page in real headless Chromium: a daemon with one HAProxy up and one down', () => {
  let stack: Stack;
  let api: DaemonClient;
  let browser: Browser;
  let base: string;
  const requested: string[] = [];

  before(async () => {
    browser = await launch();
    // h2's runtime socket does not exist: the daemon reports it down and keeps retrying.
    stack = await startStack({}, { renewMaxSleepMs: 200 }, { moreInstances: [{ name: 'h2', runtime: `unix:${join(tmpdir(), 'certd-no-such-dir', 'h2.sock')}` }] });
    base = stack.daemon.api.url;
    api = new DaemonClient(base, stack.daemon.token);
    for (const name of ['shop.status.test', 'api.status.test', 'www.status.test']) await api.call('POST', '/certs', { names: [name] });
    const soon = await selfSigned('soon.status.test', { notAfter: new Date(Date.now() + 5 * DAY_MS) });
    await api.call('POST', '/import', { cert: soon.certPem, key: soon.keyPem });
    await storeCert(stack, { id: 'gone.status.test', names: ['gone.status.test'], origin: 'source', issuer: 'source' }, new Date(Date.now() - 2 * DAY_MS));
    await storeCert(stack, { id: 'hostile.status.test', names: ['hostile.status.test', HOSTILE_NAME, HOSTILE_SCRIPT], origin: 'import', issuer: '<b>bold</b>' }, new Date(Date.now() + 60 * DAY_MS));
    await eventually(async () => (await api.call<{ instances: { name: string; state: string }[] }>('GET', '/status')).instances.some((i) => i.name === 'h2' && i.state === 'down'), UI_TIMEOUT_MS, 'h2 reported down');
    // The scheduler's first pass plans the certificates it renews (for "next renewals").
    await eventually(async () => stack.daemon.scheduler.dueTimes().size >= 3, UI_TIMEOUT_MS, 'renewals planned');
  });
  after(async () => {
    await browser?.close().catch(() => undefined);
    await stack?.stop();
  });

  async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(UI_TIMEOUT_MS);
    page.on('request', (r) => requested.push(r.url()));
    return { context, page };
  }

  test('login: no session or a wrong token gets an HTML page with a message; the right one a scoped HttpOnly SameSite=Strict cookie; never a token in a URL', async () => {
    const { context, page } = await newPage();
    try {
      const first = await page.goto(`${base}/`);
      assert.equal(first?.status(), 401);
      assert.match(first?.headers()['content-type'] ?? '', /text\/html/);
      assert.equal(new URL(page.url()).pathname, '/status', '/ leads to the page');
      assert.equal(await page.textContent('#login-message'), 'Log in with the API token.');

      const inUrl = await page.goto(`${base}/status?token=${encodeURIComponent(stack.daemon.token)}`);
      assert.equal(inUrl?.status(), 400, 'a token in the URL is refused even when right');
      assert.match((await page.textContent('#login-message')) ?? '', /not accepted/);
      assert.deepEqual(await context.cookies(), []);

      await page.goto(`${base}/status`);
      await page.fill('#token', 'not-the-token');
      const [wrong] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/status/login')), page.click('button[type=submit]')]);
      assert.equal(wrong.status(), 401);
      assert.match(wrong.headers()['content-type'] ?? '', /text\/html/);
      assert.equal(await page.textContent('#login-message'), 'Wrong token: try again.');
      assert.deepEqual(await context.cookies(), []);

      await page.fill('#token', stack.daemon.token);
      await Promise.all([page.waitForURL((u) => u.pathname === '/status'), page.click('button[type=submit]')]);
      assert.ok(await page.isVisible('#summary'), 'the status page after login');
      const cookies = await context.cookies();
      assert.equal(cookies.length, 1);
      const [cookie] = cookies;
      assert.deepEqual([cookie!.name, cookie!.httpOnly, cookie!.sameSite, cookie!.path, cookie!.secure], ['certd_session', true, 'Strict', '/status', false]);
      assert.ok(!cookie!.value.includes(stack.daemon.token), 'the cookie is not the token');
      assert.equal(await page.evaluate('document.cookie'), '', 'not readable by scripts');
      for (const url of requested) assert.ok(!url.includes(encodeURIComponent(stack.daemon.token)) || url.includes('?token='), `no token in ${url}`);
      assert.ok(!page.url().includes(stack.daemon.token));

      // The session opens the page and its JSON, never /v1 (bearer only).
      const header = { cookie: `${cookie!.name}=${cookie!.value}` };
      assert.equal((await fetch(`${base}/status/data`, { headers: header })).status, 200);
      assert.equal((await fetch(`${base}/v1/status`, { headers: header })).status, 401);
      assert.equal((await fetch(`${base}/status/data`)).status, 401);
      assert.equal((await fetch(`${base}/status/data`, { headers: { authorization: `Bearer ${stack.daemon.token}` } })).status, 200);

      await Promise.all([page.waitForResponse((r) => r.url().endsWith('/status/logout')), page.click('#logout')]);
      assert.equal(await page.textContent('#login-message'), 'Logged out.');
      assert.deepEqual(await context.cookies(), []);
      assert.equal((await page.goto(`${base}/status`))?.status(), 401);
    } finally {
      await context.close();
    }
  });

  test('the cookie is Secure when the request came over https (X-Forwarded-Proto from a TLS proxy)', async () => {
    const post = (headers: Record<string, string>) =>
      fetch(`${base}/status/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams({ token: stack.daemon.token, next: '?q=shop&token=x' }) });
    const plain = await post({});
    assert.equal(plain.status, 303);
    assert.equal(plain.headers.get('location'), '/status?q=shop', 'the filter survives the login, a token in it does not');
    assert.doesNotMatch(plain.headers.getSetCookie().join('\n'), /Secure/);
    const https = await post({ 'x-forwarded-proto': 'https' });
    assert.match(https.headers.getSetCookie().join('\n'), /^certd_session=\d+\.[\w-]+; Max-Age=43200; Path=\/status; HttpOnly; Secure; SameSite=Strict$/);
  });

  test('summary, filters, search, paging, the chart, what certd does not renew, and escaped names', async () => {
    const { context, page } = await newPage();
    try {
      await login(page, base, stack.daemon.token);
      const s = await summary(page);
      assert.deepEqual(
        { up: s['instances.up'], down: s['instances.down'], total: s['certs.total'], expired: s['certs.expired'], soon: s['certs.soon'], notRenewed: s['certs.notRenewed'] },
        { up: 1, down: 1, total: 6, expired: 1, soon: 1, notRenewed: 3 },
      );
      // The three issued are served by h1 (up); the two written to the store behind the daemon's back are not.
      assert.equal(s['certs.valid']! + s['certs.pending']!, 4);
      assert.ok((await page.textContent('#failures'))?.includes('h2'), 'h2 is among the failures');
      assert.match((await page.textContent('#next-renewals')) ?? '', /status\.test/);
      // Down and expires-soon look different (their own badge classes and colours).
      const colour = (sel: string) => page.evaluate(`getComputedStyle(document.querySelector(${JSON.stringify(sel)})).backgroundColor`);
      assert.notEqual(await colour('tr[data-instance=h2] .badge'), await colour('tr[data-id="soon.status.test"] .badge'));
      assert.equal(await page.textContent('tr[data-instance=h1] td.err'), '', 'an instance up shows no error');

      // Most urgent first: the expired one, then the one expiring in 5 days.
      assert.deepEqual((await rowIds(page)).slice(0, 2), ['gone.status.test', 'soon.status.test']);
      assert.match((await page.textContent('tr[data-id="gone.status.test"]')) ?? '', /not renewed by certd/);
      assert.doesNotMatch((await page.textContent('tr[data-id="shop.status.test"]')) ?? '', /not renewed by certd/);

      // Hostile names and issuers are text, never markup.
      assert.equal(await page.evaluate('window.__pwned'), undefined);
      const hostile = 'tr[data-id="hostile.status.test"]';
      assert.equal(await page.$$eval(`${hostile} img, ${hostile} script, ${hostile} b`, (els) => els.length), 0);
      assert.ok((await page.textContent(hostile))?.includes(HOSTILE_NAME));
      assert.ok((await page.textContent(hostile))?.includes(HOSTILE_SCRIPT));
      assert.ok((await page.textContent(hostile))?.includes('<b>bold</b>'));
      await page.selectOption('select[name=issuer]', '<b>bold</b>');
      await Promise.all([page.waitForURL(/issuer=/), page.click('#filter button[type=submit]')]);
      assert.deepEqual(await rowIds(page), ['hostile.status.test']);

      // Search, by a part of any name.
      await page.goto(`${base}/status`);
      await page.fill('input[name=q]', 'SHOP');
      await Promise.all([page.waitForURL(/q=SHOP/), page.click('#filter button[type=submit]')]);
      assert.deepEqual(await rowIds(page), ['shop.status.test']);
      assert.equal(await page.inputValue('input[name=q]'), 'SHOP');
      assert.equal(await page.textContent('#matching'), '1');

      // Filters: a state, an origin.
      await page.goto(`${base}/status?state=expired`);
      assert.deepEqual(await rowIds(page), ['gone.status.test']);
      await page.goto(`${base}/status?origin=import`);
      assert.deepEqual((await rowIds(page)).sort(), ['hostile.status.test', 'soon.status.test']);
      const bad = await page.goto(`${base}/status?state=nonsense`);
      assert.equal(bad?.status(), 400);
      assert.match((await page.textContent('#login-message')) ?? '', /state "nonsense" is not one of/);

      // Paging: 2 per page, 3 pages; next and previous.
      await page.goto(`${base}/status?per=2`);
      const page1 = await rowIds(page);
      assert.equal(page1.length, 2);
      assert.match((await page.textContent('#page-info')) ?? '', /1–2 of 6 matching .* page 1 of 3/);
      await Promise.all([page.waitForURL(/page=2/), page.click('#next-page')]);
      const page2 = await rowIds(page);
      assert.equal(page2.length, 2);
      assert.equal(page1.filter((id) => page2.includes(id)).length, 0);
      await page.goto(`${base}/status?per=2&page=99`);
      assert.match((await page.textContent('#page-info')) ?? '', /page 3 of 3/, 'past the end shows the last page');

      // The chart: one bar per bucket, counts adding up to the certificates matching.
      await page.goto(`${base}/status`);
      const buckets = await page.$$eval('#timeline g[data-bucket]', (gs) => gs.map((g) => [g.getAttribute('data-bucket'), Number(g.getAttribute('data-count'))] as const));
      assert.equal(buckets.length, 7);
      assert.equal(buckets.reduce((n, [, c]) => n + c, 0), 6);
      assert.deepEqual(buckets[0], ['expired', 1]);
      assert.deepEqual(buckets[1], ['0–6 d', 1]);
    } finally {
      await context.close();
    }
  });

  test('the HTML the server sends escapes every name (hostile SNI-like names, a hostile search)', async () => {
    const res = await fetch(`${base}/status/login`, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ token: stack.daemon.token }) });
    const cookie = res.headers.getSetCookie()[0]!.split(';')[0]!;
    const html = await (await fetch(`${base}/status?q=${encodeURIComponent('"><script>x</script>')}`, { headers: { cookie } })).text();
    assert.doesNotMatch(html, /"><script>x/);
    assert.match(html, /value="&#34;&#62;&#60;script&#62;x&#60;\/script&#62;"/);
    const all = await (await fetch(`${base}/status`, { headers: { cookie } })).text();
    assert.ok(!all.includes(HOSTILE_NAME) && !all.includes(HOSTILE_SCRIPT) && !all.includes('<b>bold'), 'no hostile markup in the page');
    assert.ok(all.includes('&#60;img src=x onerror=&#34;window.__pwned=1&#34;&#62;'));
    assert.match(res.headers.get('content-security-policy') ?? (await fetch(`${base}/status`, { headers: { cookie } })).headers.get('content-security-policy') ?? '', /script-src 'nonce-/);
  });

  test('auto-refresh updates the page in place, and pauses', async () => {
    const { context, page } = await newPage();
    try {
      await login(page, base, stack.daemon.token);
      await page.goto(`${base}/status?refresh=2`);
      const total = (await summary(page))['certs.total']!;
      const generated = await page.getAttribute('#generated-at', 'datetime');
      await page.evaluate('window.__same = true');
      await api.call('POST', '/certs', { names: ['fresh.status.test'] });
      await eventually(async () => (await summary(page))['certs.total'] === total + 1, UI_TIMEOUT_MS, 'the page showing the new certificate');
      assert.equal(await page.evaluate('window.__same'), true, 'updated in place, not reloaded');
      assert.notEqual(await page.getAttribute('#generated-at', 'datetime'), generated);
      assert.ok((await rowIds(page)).includes('fresh.status.test'));

      await page.click('#refresh-toggle');
      assert.equal(await page.textContent('#refresh-toggle'), 'resume');
      await api.call('POST', '/certs', { names: ['later.status.test'] });
      await new Promise((r) => setTimeout(r, 6_000)); // three refresh periods
      assert.equal((await summary(page))['certs.total'], total + 1, 'paused: no update');
      await page.click('#refresh-toggle');
      await eventually(async () => (await summary(page))['certs.total'] === total + 2, UI_TIMEOUT_MS, 'the page updating again once resumed');
    } finally {
      await context.close();
    }
  });
});

describe('status page at 10,000 certificates (real daemon, real Chromium)', () => {
  const COUNT = 10_000;
  let dir: string;
  let daemon: Daemon | undefined;
  let browser: Browser | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'certd-status-10k-'));
    await seedCerts(join(dir, 'data'), COUNT);
    const apiPort = await freePort();
    // One instance that never answers: the page's scale is the point, not 10,000 runtime pushes.
    const config = configFromObject(
      { dataDir: './data', haproxy: { instances: [{ name: 'h1', runtime: `unix:${join(dir, 'absent.sock')}` }], certDir: './certs' }, api: { listen: `127.0.0.1:${apiPort}` } },
      dir,
    );
    daemon = await Daemon.start(config, { log: silentLogger, pollMs: 1_000 });
    browser = await launch();
  });
  after(async () => {
    await browser?.close().catch(() => undefined);
    await daemon?.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  test('answers with one page of rows, pages and searches, and its screenshot looks sane', async () => {
    const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const page = await context.newPage();
      page.setDefaultTimeout(UI_TIMEOUT_MS * 2);
      const base = daemon!.api.url;
      await login(page, base, daemon!.token);
      const s = await summary(page);
      assert.equal(s['certs.total'], COUNT);
      assert.equal(s['certs.notRenewed'], COUNT / 5);
      assert.equal(s['instances.down'], 1);
      assert.equal((await rowIds(page)).length, 50, 'one page of rows, not 10,000');
      assert.match((await page.textContent('#page-info')) ?? '', /1–50 of 10000 matching .* page 1 of 200/);

      await page.goto(`${base}/status?page=200`);
      assert.equal((await rowIds(page)).length, 50);
      assert.match((await page.textContent('#page-info')) ?? '', /9951–10000 of 10000/);
      await page.goto(`${base}/status?q=${seededName(4242)}`);
      assert.deepEqual(await rowIds(page), [seededName(4242)]);
      await page.goto(`${base}/status?origin=source&per=500`);
      assert.equal((await rowIds(page)).length, 500);
      assert.match((await page.textContent('#page-info')) ?? '', /of 1000 matching/);

      await page.goto(`${base}/status`);
      const shot = join(dir, 'status-10k.png');
      const png = await page.screenshot({ path: shot, fullPage: true });
      // PNG: the IHDR chunk holds width and height at bytes 16 and 20.
      const [width, height] = [png.readUInt32BE(16), png.readUInt32BE(20)];
      assert.equal(width, 1280);
      assert.ok(height >= 900 && height < 20_000, `height ${height}`);
      assert.ok(png.length > 50_000, `a real picture, not a blank page (${png.length} bytes)`);
      assert.deepEqual((await readFile(shot)).subarray(0, 8), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      if (process.env.CERTD_KEEP_SCREENSHOT) await writeFile(process.env.CERTD_KEEP_SCREENSHOT, png);
    } finally {
      await context.close();
    }
  });
});

