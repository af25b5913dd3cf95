import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command } from 'commander';
import { registerWait } from '../src/cli/commands/wait.js';
import { errorCode } from '../src/core/errors.js';
import { exportPrivateKeyPem, generateKeyPair } from '../src/crypto/keys.js';
import { buildCertificate, selfSignedIssuer } from '../src/crypto/x509.js';
import { checkCrtList, parseCrtListLine } from '../src/haproxy/crtlist/check.js';
import { tempDir } from './helpers/temp-dir.js';

const DAY = 86_400_000;
const ROOT = fileURLToPath(new URL('..', import.meta.url));

async function selfSigned(name: string, notAfter = new Date(Date.now() + 30 * DAY), notBefore = new Date(Date.now() - 60_000)) {
  const { privateKey, publicKey } = await generateKeyPair('ecdsa-p256');
  const subject = { commonName: name };
  const cert = buildCertificate({ subject, subjectAltNames: [name], publicKey, issuer: selfSignedIssuer(subject, privateKey), notBefore, notAfter });
  return { certPem: cert.pem, keyPem: exportPrivateKeyPem(privateKey) };
}

/*
 * The command runs in a child process exactly as `haproxy-certd wait` will once registered: a
 * program with main.ts's error handling and only this command, so the test does not depend on
 * the CLI's registration list.
 */
const CHILD_MAIN = `
import { Command, CommanderError } from 'commander';
import { CertdError } from './src/core/errors.ts';
import { registerWait } from './src/cli/commands/wait.ts';
const program = new Command('haproxy-certd').option('-c, --config <file>', 'config file', './certd.yaml').exitOverride();
registerWait(program);
try {
  await program.parseAsync(process.argv.slice(1), { from: 'user' });
} catch (err) {
  if (err instanceof CommanderError) process.exitCode = err.exitCode === 0 ? 0 : 2;
  else if (err instanceof CertdError) {
    process.stderr.write('error: ' + err.message + ' [' + err.code + ']\\n');
    process.exitCode = ['CERTD_E_CONFIG', 'CERTD_E_USAGE'].includes(err.code) ? 2 : 1;
  } else { process.stderr.write(String(err) + '\\n'); process.exitCode = 1; }
}
`;

function runWait(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD_MAIN, 'wait', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** Runs `wait` in-process through a bare commander program; output captured. */
async function waitInProcess(t: TestContext, args: string[]): Promise<{ error?: unknown; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  t.mock.method(process.stdout, 'write', (chunk: string) => ((stdout += chunk), true));
  t.mock.method(process.stderr, 'write', (chunk: string) => ((stderr += chunk), true));
  const program = new Command('haproxy-certd').exitOverride();
  registerWait(program);
  try {
    await program.parseAsync(['wait', ...args], { from: 'user' });
    return { stdout, stderr };
  } catch (error) {
    return { error, stdout, stderr };
  } finally {
    t.mock.restoreAll();
  }
}

describe('crt-list check', () => {
  const dir = tempDir('certd-wait-');

  test('lines: comments, [options], SNI filters', () => {
    assert.equal(parseCrtListLine('  # comment'), undefined);
    assert.equal(parseCrtListLine('   '), undefined);
    assert.deepEqual(parseCrtListLine('/c/a.pem'), { cert: '/c/a.pem', options: [], sni: [] });
    assert.deepEqual(parseCrtListLine('/c/a.pem [alpn h2,http/1.1 ca-file /c/ca.pem verify required] a.test !b.a.test'), {
      cert: '/c/a.pem',
      options: ['alpn', 'h2,http/1.1', 'ca-file', '/c/ca.pem', 'verify', 'required'],
      sni: ['a.test', '!b.a.test'],
    });
    assert.throws(() => parseCrtListLine('/c/a.pem [alpn h2'), /closing/);
  });

  test('complete: combined PEMs, a .key sidecar, an existing ca-file, relative paths', async () => {
    const d = join(dir, 'complete');
    await mkdir(join(d, 'ca'), { recursive: true });
    const a = await selfSigned('a.test');
    const b = await selfSigned('b.test');
    await writeFile(join(d, '_default.pem'), a.certPem + a.keyPem);
    await writeFile(join(d, 'b.pem'), b.certPem);
    await writeFile(join(d, 'b.pem.key'), b.keyPem);
    await writeFile(join(d, 'ca', 'b.pem'), a.certPem);
    await writeFile(
      join(d, 'crt-list.txt'),
      `# written by haproxy-certd\n${join(d, '_default.pem')}\n\nb.pem [verify required ca-file ca/b.pem] b.test\n${join(d, '_default.pem')} a.test\n`,
    );
    const report = await checkCrtList(join(d, 'crt-list.txt'));
    assert.deepEqual(report.problems, []);
    assert.equal(report.complete, true);
    assert.equal(report.certificates, 3);
  });

  test('incomplete: says which file and why, with line numbers', async () => {
    const d = join(dir, 'incomplete');
    await mkdir(d);
    const a = await selfSigned('a.test');
    const other = await selfSigned('other.test');
    const expired = await selfSigned('old.test', new Date(Date.now() - DAY), new Date(Date.now() - 10 * DAY));
    await writeFile(join(d, 'ok.pem'), a.certPem + a.keyPem);
    await writeFile(join(d, 'broken.pem'), `-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n${a.keyPem}`);
    await writeFile(join(d, 'mismatch.pem'), a.certPem + other.keyPem);
    await writeFile(join(d, 'old.pem'), expired.certPem + expired.keyPem);
    await writeFile(join(d, 'nokey.pem'), a.certPem);
    const lines = [
      'ok.pem',
      'missing.pem a.test',
      'broken.pem',
      'mismatch.pem',
      'old.pem',
      'nokey.pem',
      'ok.pem [verify required ca-file ca/missing-ca.pem] a.test',
      'ok.pem [alpn h2',
    ];
    await writeFile(join(d, 'crt-list.txt'), `${lines.join('\n')}\n`);
    const report = await checkCrtList(join(d, 'crt-list.txt'));
    assert.equal(report.complete, false);
    const expected: [number, string, RegExp][] = [
      [2, 'missing.pem', /^does not exist$/],
      [3, 'broken.pem', /does not parse as X\.509 .*\[CERTD_E_BAD_PEM\]$/],
      [4, 'mismatch.pem', /does not belong to the first certificate .*\[CERTD_E_KEY_MISMATCH\]$/],
      [5, 'old.pem', /^the certificate for old\.test expired at .*\[CERTD_E_CERT_EXPIRED\]$/],
      [6, 'nokey.pem', /^no PRIVATE KEY block found.* \(nor is there a .*nokey\.pem\.key\) \[CERTD_E_BAD_PEM\]$/],
      [7, 'ca/missing-ca.pem', /^ca-file: does not exist$/],
      [8, 'crt-list.txt', /^"\[" without a closing "\]"$/],
    ];
    assert.deepEqual(
      report.problems.map((p) => [p.line, p.path.slice(d.length + 1)]),
      expected.map(([line, path]) => [line, path]),
    );
    report.problems.forEach((p, i) => assert.match(p.reason, expected[i]![2]));
  });

  test('absent, unreadable or empty: incomplete', async () => {
    const absent = await checkCrtList(join(dir, 'nope', 'crt-list.txt'));
    assert.deepEqual(absent.problems, [{ path: join(dir, 'nope', 'crt-list.txt'), reason: 'does not exist' }]);
    await writeFile(join(dir, 'empty.txt'), '# nothing yet\n');
    const empty = await checkCrtList(join(dir, 'empty.txt'));
    assert.equal(empty.complete, false);
    assert.match(empty.problems[0]!.reason, /lists no certificate/);
  });
});

describe('wait command', () => {
  let dir: string;
  let good: string;
  before(async () => {
    dir = tempDir('certd-waitcmd-');
    const a = await selfSigned('a.test');
    good = join(dir, 'good');
    await mkdir(good);
    await writeFile(join(good, 'a.pem'), a.certPem + a.keyPem);
    await writeFile(join(good, 'crt-list.txt'), `${join(good, 'a.pem')} a.test\n`);
  });

  test('in process: complete → ok; absent → fail throws CERTD_E_CRT_LIST_INCOMPLETE, continue warns', async (t) => {
    const ok = await waitInProcess(t, ['--crt-list', join(good, 'crt-list.txt')]);
    assert.equal(ok.error, undefined);
    assert.match(ok.stdout, /is complete: 1 certificate/);

    const missing = join(dir, 'absent', 'crt-list.txt');
    const failed = await waitInProcess(t, ['--crt-list', missing, '--timeout', '300ms', '--interval', '50ms']);
    assert.equal(errorCode(failed.error), 'CERTD_E_CRT_LIST_INCOMPLETE');
    assert.match((failed.error as Error).message, new RegExp(`not complete after 300ms: ${missing}: does not exist`));

    const continued = await waitInProcess(t, ['--crt-list', missing, '--timeout', '300ms', '--policy', 'continue']);
    assert.equal(continued.error, undefined);
    assert.match(continued.stderr, /^warning: crt-list .* is not complete after 300ms: .*does not exist; continuing \(--policy continue\)/);

    const badDuration = await waitInProcess(t, ['--crt-list', missing, '--timeout', 'soon']);
    assert.equal(errorCode(badDuration.error), 'CERTD_E_USAGE');
  });

  test('process: complete → exit 0 at once', async () => {
    const r = await runWait(['--crt-list', join(good, 'crt-list.txt'), '--timeout', '10s']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /is complete: 1 certificate\(s\)/);
  });

  test('process: absent → fail exits 1 naming the file; continue exits 0 with a warning', async () => {
    const missing = join(dir, 'never', 'crt-list.txt');
    const failed = await runWait(['--crt-list', missing, '--timeout', '500ms']);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, new RegExp(`error: crt-list ${missing} is not complete after 500ms: ${missing}: does not exist \\[CERTD_E_CRT_LIST_INCOMPLETE\\]`));
    const continued = await runWait(['--crt-list', missing, '--timeout', '500ms', '--policy', 'continue']);
    assert.equal(continued.code, 0);
    assert.match(continued.stderr, /^warning: .*does not exist; continuing/);
  });

  test('process: incomplete (missing PEM, broken PEM, missing ca-file) is like absent', async () => {
    const d = join(dir, 'partial');
    await mkdir(d);
    const a = await selfSigned('a.test');
    await writeFile(join(d, 'a.pem'), a.certPem + a.keyPem);
    await writeFile(join(d, 'broken.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n');
    for (const [name, line, why] of [
      ['missing-pem', 'gone.pem', /gone\.pem \(line 1\): does not exist/],
      ['broken-pem', 'broken.pem', /broken\.pem \(line 1\): no CERTIFICATE block found/],
      ['missing-ca', 'a.pem [ca-file ca.pem verify required] a.test', /ca\.pem \(line 1\): ca-file: does not exist/],
    ] as const) {
      await writeFile(join(d, `${name}.txt`), `${line}\n`);
      const r = await runWait(['--crt-list', join(d, `${name}.txt`), '--timeout', '300ms', '--interval', '100ms']);
      assert.equal(r.code, 1, name);
      assert.match(r.stderr, why);
    }
  });

  test('process: becomes complete during the wait → exit 0 promptly', async () => {
    const d = join(dir, 'late');
    await mkdir(d);
    const waiting = runWait(['--crt-list', join(d, 'crt-list.txt'), '--timeout', '20s', '--interval', '100ms']);
    await sleep(1_500);
    const a = await selfSigned('late.test');
    // The list first, its certificate a moment later, as a deploy that is still writing.
    await writeFile(join(d, 'crt-list.txt'), `${join(d, 'late.pem')} late.test\n`);
    await sleep(300);
    await writeFile(join(d, 'late.pem'), a.certPem + a.keyPem);
    const written = Date.now();
    const r = await waiting;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Date.now() - written < 2_000, `exited ${Date.now() - written} ms after the files were complete`);
  });

  test('process: usage errors exit 2', async () => {
    const badPolicy = await runWait(['--crt-list', 'x', '--policy', 'maybe']);
    assert.equal(badPolicy.code, 2);
    assert.match(badPolicy.stderr, /Allowed choices are fail, continue/);
    const badTimeout = await runWait(['--crt-list', 'x', '--timeout', 'later']);
    assert.equal(badTimeout.code, 2);
    assert.match(badTimeout.stderr, /--timeout "later"/);
    const noList = await runWait([]);
    assert.equal(noList.code, 2);
  });
});
