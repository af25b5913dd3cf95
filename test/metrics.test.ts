import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { DaemonClient } from '../src/cli/daemon-client.js';
import type { IssueResult } from '../src/service/cert-service.js';
import { selfSigned } from './helpers/certs.js';
import { eventually, startStack, type Stack } from './helpers/stack.js';

const ALERTS = fileURLToPath(new URL('../contrib/prometheus/alerts.yml', import.meta.url));
const run = promisify(execFile);

/** One sample of a /metrics text: its name, labels and value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function samples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

async function scrape(stack: Stack): Promise<Sample[]> {
  return samples(await (await fetch(`${stack.daemon.api.url}/metrics`)).text());
}

function find(all: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return all.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

function value(all: Sample[], name: string, labels: Record<string, string>): number | undefined {
  const found = find(all, name, labels);
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)}: ${found.length} series`);
  return found[0]?.value;
}

describe('metrics from a real daemon and HAProxy: certificate series', () => {
  let stack: Stack;
  let api: DaemonClient;

  before(async () => {
    // Short scheduler sleeps, so a newly issued certificate gets its renewal time within the test.
    stack = await startStack({}, { renewMaxSleepMs: 200 });
    api = new DaemonClient(stack.daemon.api.url, stack.daemon.token);
  });
  after(() => stack.stop());

  test('issue → renew → remove: the expiry, ready and renewal series follow, and are gone after the removal', async () => {
    const issued = await api.call<IssueResult>('POST', '/certs', { names: ['gone.test'] });
    let m = await scrape(stack);
    const expiry = find(m, 'certd_cert_not_after_timestamp_seconds', { cert: 'gone.test' });
    assert.deepEqual(
      expiry.map((s) => [s.labels, s.value]),
      [[{ cert: 'gone.test', issuer: 'internal', origin: 'api', serial: issued.cert.serial }, Math.floor(Date.parse(issued.cert.notAfter) / 1000)]],
    );
    assert.equal(value(m, 'certd_cert_ready', { cert: 'gone.test' }), 1, 'served by h1, the only instance');
    assert.ok((value(m, 'certd_instance_certs', { instance: 'h1', state: 'in_sync' }) ?? 0) >= 1);
    assert.equal(value(m, 'certd_instance_certs', { instance: 'h1', state: 'missing' }), 0);
    assert.equal(value(m, 'certd_instance_certs', { instance: 'h1', state: 'stale' }), 0);
    await eventually(async () => value(await scrape(stack), 'certd_cert_renewal_timestamp_seconds', { cert: 'gone.test' }) !== undefined, 10_000, 'renewal time planned by the scheduler');
    const renewAt = value(await scrape(stack), 'certd_cert_renewal_timestamp_seconds', { cert: 'gone.test' })!;
    assert.ok(renewAt > Date.now() / 1000 && renewAt < Date.parse(issued.cert.notAfter) / 1000, `renewal at ${renewAt}: between now and the expiry`);

    // A renewal changes the serial: the old series goes, one series stays.
    const { results } = await api.call<{ results: IssueResult[] }>('POST', '/renew', { names: ['gone.test'] });
    assert.notEqual(results[0]!.cert.serial, issued.cert.serial);
    m = await scrape(stack);
    assert.deepEqual(
      find(m, 'certd_cert_not_after_timestamp_seconds', { cert: 'gone.test' }).map((s) => s.labels.serial),
      [results[0]!.cert.serial],
    );

    await api.call('DELETE', '/certs/gone.test');
    m = await scrape(stack);
    assert.deepEqual(m.filter((s) => s.labels.cert === 'gone.test'), [], 'no series names the removed certificate');
    assert.equal(value(m, 'certd_instance_certs', { instance: 'h1', state: 'missing' }), 0);
  });

  test('manual renewals (names, and all) count as renewals with trigger="manual", not only as issues', async () => {
    await api.call<IssueResult>('POST', '/certs', { names: ['manual-a.test'] });
    await api.call<IssueResult>('POST', '/certs', { names: ['manual-b.test'] });
    const before = await scrape(stack);
    const manualOk = (m: Sample[]) => value(m, 'certd_renewal_total', { result: 'ok', trigger: 'manual' }) ?? 0;
    const issuedOk = (m: Sample[]) => value(m, 'certd_issue_total', { issuer: 'internal', result: 'ok' }) ?? 0;

    await api.call('POST', '/renew', { names: ['manual-a.test'] });
    let m = await scrape(stack);
    assert.equal(manualOk(m), manualOk(before) + 1);
    assert.equal(value(m, 'certd_renewal_failing', { cert: 'manual-a.test' }), 0);

    const { results } = await api.call<{ results: IssueResult[] }>('POST', '/renew', { all: true });
    assert.ok(results.length >= 2);
    m = await scrape(stack);
    assert.equal(manualOk(m), manualOk(before) + 1 + results.length, 'each certificate of renew --all is one renewal');
    assert.equal(issuedOk(m), issuedOk(before) + 1 + results.length, 'and each is still an issuance');
    assert.equal(value(m, 'certd_renewal_total', { result: 'ok', trigger: 'scheduled' }), undefined, 'nothing was due');
  });
});

describe('metrics from a real daemon and HAProxy: an instance that does not answer', () => {
  let stack: Stack;
  let api: DaemonClient;
  const dead = `unix:${join(tmpdir(), `certd-metrics-nobody-${randomBytes(4).toString('hex')}.sock`)}`;

  let soon: IssueResult;

  before(async () => {
    stack = await startStack({}, { renewMaxSleepMs: 200 }, { moreInstances: [{ name: 'dead', runtime: dead }] });
    api = new DaemonClient(stack.daemon.api.url, stack.daemon.token);
    await api.call<IssueResult>('POST', '/certs', { names: ['half.test'] });
    await api.call('POST', '/renew', { names: ['half.test'] });
    // An imported certificate 36 hours from expiry: certd does not renew it, both expiry alerts fire.
    const expiring = await selfSigned('soon.test', { notAfter: new Date(Date.now() + 36 * 3_600_000) });
    soon = await api.call<IssueResult>('POST', '/import', { cert: expiring.certPem, key: expiring.keyPem });
  });
  after(() => stack.stop());

  test('a certificate served by h1 only is not ready; the dead instance counts it missing and is down', async () => {
    await eventually(async () => value(await scrape(stack), 'certd_instance_up', { instance: 'dead' }) === 0, 10_000, 'dead instance reported down');
    const m = await scrape(stack);
    assert.equal(value(m, 'certd_cert_ready', { cert: 'half.test' }), 0);
    assert.equal(value(m, 'certd_instance_up', { instance: 'h1' }), 1);
    // half.test and soon.test.
    assert.equal(value(m, 'certd_instance_certs', { instance: 'dead', state: 'missing' }), 2);
    assert.equal(value(m, 'certd_instance_certs', { instance: 'h1', state: 'in_sync' }), 2);
  });

  test('contrib/prometheus/alerts.yml passes promtool check rules', async () => {
    const { stdout } = await run('promtool', ['check', 'rules', ALERTS]).catch((err: Error) => {
      throw new Error(`promtool check rules failed (promtool comes with Debian's prometheus package: CERTD_BOOTSTRAP_TEST=1 bash scripts/bootstrap.sh): ${err.message}`);
    });
    assert.match(stdout, /SUCCESS: 5 rules found/);
  });

  test("every metric and label value an alert expression names is in this daemon's /metrics", async () => {
    const m = await scrape(stack);
    const rules = (parse(await readFile(ALERTS, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] }).groups.flatMap((g) => g.rules);
    assert.deepEqual(rules.map((r) => r.alert).sort(), [
      'CertdCertificateExpiringCritical',
      'CertdCertificateExpiringSoon',
      'CertdInstanceDown',
      'CertdInstanceOutOfSync',
      'CertdRenewalFailing',
    ]);
    for (const rule of rules) {
      const selectors = [...rule.expr.matchAll(/\b(certd_\w+)(?:\{([^}]*)\})?/g)];
      assert.ok(selectors.length > 0, `${rule.alert}: names no certd metric`);
      for (const [, name, matchers] of selectors) {
        assert.ok(find(m, name!).length > 0, `${rule.alert}: ${name} is not exposed`);
        for (const [, label, op, want] of (matchers ?? '').matchAll(/(\w+)\s*(=~|=)\s*"([^"]*)"/g)) {
          for (const v of op === '=~' ? want!.split('|') : [want!]) {
            assert.ok(find(m, name!, { [label!]: v }).length > 0, `${rule.alert}: no ${name}{${label}="${v}"} exposed`);
          }
        }
      }
    }
  });

  test("promtool evaluates the rules on this daemon's /metrics: what is down and what expires fire, nothing else", async () => {
    await eventually(async () => value(await scrape(stack), 'certd_instance_up', { instance: 'dead' }) === 0, 10_000, 'dead instance reported down');
    const scrapedAt = Math.floor(Date.now() / 1000);
    const m = (await scrape(stack)).filter((s) => s.name.startsWith('certd_'));
    // promtool's clock starts at 0: timestamps become seconds from the scrape, so time() there is "now".
    const input_series = m.map((s) => ({
      series: `${s.name}{${Object.entries(s.labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`,
      values: `${s.name.endsWith('_timestamp_seconds') ? s.value - scrapedAt : s.value}+0x90`,
    }));
    const evalSeconds = 70 * 60;
    const expiry = value(m, 'certd_cert_not_after_timestamp_seconds', { cert: 'soon.test' })!;
    const left = humanizeDuration(expiry - scrapedAt - evalSeconds);
    const soonLabels = { cert: 'soon.test', issuer: 'import', origin: 'import', serial: soon.cert.serial };
    const expected: Record<string, { exp_labels: Record<string, string>; exp_annotations: Record<string, string> }[]> = {
      CertdInstanceDown: [
        {
          exp_labels: { instance: 'dead', severity: 'critical' },
          exp_annotations: {
            summary: 'HAProxy instance dead does not answer certd',
            description: 'certd cannot reach the runtime API of dead; it keeps retrying. New and renewed certificates do not reach that instance meanwhile.',
          },
        },
      ],
      // h1 serves everything; the dead instance misses it all but is down, which is the alert above.
      CertdInstanceOutOfSync: [],
      CertdRenewalFailing: [],
      CertdCertificateExpiringSoon: [
        {
          exp_labels: { ...soonLabels, severity: 'warning' },
          exp_annotations: {
            summary: 'Certificate soon.test expires in less than 7 days',
            description: `soon.test (issuer import, origin import, serial ${soon.cert.serial}) expires in ${left}. Imported and source certificates are not renewed by certd: replace them at their source.`,
          },
        },
      ],
      CertdCertificateExpiringCritical: [
        {
          exp_labels: { ...soonLabels, severity: 'critical' },
          exp_annotations: { summary: 'Certificate soon.test expires in less than 2 days', description: `soon.test (issuer import, origin import) expires in ${left}.` },
        },
      ],
    };
    const unitTest = {
      rule_files: [ALERTS],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series,
          alert_rule_test: Object.entries(expected).map(([alertname, exp_alerts]) => ({ eval_time: `${evalSeconds / 60}m`, alertname, exp_alerts })),
        },
      ],
    };
    const file = join(stack.dir, 'alerts.test.yml');
    await writeFile(file, stringify(unitTest));
    await run('promtool', ['test', 'rules', file]).catch((err: Error & { stdout?: string }) => {
      throw new Error(`promtool test rules: ${err.message}\n${err.stdout ?? ''}`);
    });
  });
});

/** Prometheus's humanizeDuration template function, for whole seconds of at least one. */
function humanizeDuration(seconds: number): string {
  const s = Math.trunc(seconds);
  const [d, h, min, sec] = [Math.floor(s / 86_400), Math.floor(s / 3_600) % 24, Math.floor(s / 60) % 60, s % 60];
  if (d) return `${d}d ${h}h ${min}m ${sec}s`;
  if (h) return `${h}h ${min}m ${sec}s`;
  if (min) return `${min}m ${sec}s`;
  return `${sec}s`;
}
