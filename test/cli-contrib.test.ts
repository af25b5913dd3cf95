import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFile, mkdtemp, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { allCommands, commandTree } from '../src/cli/command-tree.js';
import { bashCompletion } from '../src/cli/completion.js';
import { manPage } from '../src/cli/man-page.js';
import { buildProgram } from '../src/cli/program.js';
import { runCli } from './helpers/cli.js';

const run = promisify(execFile);
const ROOT = new URL('..', import.meta.url).pathname;
const COMPLETION = join(ROOT, 'contrib/completion/haproxy-certd.bash');
const MAN = join(ROOT, 'contrib/man/haproxy-certd.1');
const LOGROTATE = join(ROOT, 'contrib/logrotate/haproxy-certd');
const tree = commandTree(buildProgram());
const commands = allCommands(tree).slice(1);
const has = (bin: string) => run('sh', ['-c', `command -v ${bin}`]).then(() => true, () => false);

describe('shell completion and man page: generated from the program, current in contrib/', () => {
  test('contrib/ holds what `completion bash` and `man` print now (regenerate with those commands)', async () => {
    const [completion, man] = await Promise.all([runCli(['completion', 'bash']), runCli(['man'])]);
    assert.equal(completion.code, 0, completion.stderr);
    assert.equal(man.code, 0, man.stderr);
    assert.equal(await readFile(COMPLETION, 'utf8'), completion.stdout, 'node --import tsx src/cli/main.ts completion bash > contrib/completion/haproxy-certd.bash');
    assert.equal(await readFile(MAN, 'utf8'), man.stdout, 'node --import tsx src/cli/main.ts man > contrib/man/haproxy-certd.1');
    assert.equal(completion.stdout, bashCompletion(buildProgram()));
  });

  test('the hidden commands stay out of --help, the man page and the completion', async () => {
    const help = await runCli(['--help']);
    assert.doesNotMatch(help.stdout, /^\s+(completion|man)\b/m);
    assert.ok(!commands.some((c) => ['completion', 'man'].includes(c.path[0]!)));
    assert.equal((await runCli(['completion', 'zsh'])).code, 2, 'an unknown shell is a usage error');
  });

  test('every command and every option appears in both', () => {
    const completion = bashCompletion(buildProgram());
    const man = manPage(buildProgram());
    assert.ok(commands.length >= 12, `commands: ${commands.map((c) => c.path.join(' '))}`);
    for (const c of commands) {
      assert.match(completion, new RegExp(`"${c.path.slice(0, -1).join(' ')}\\|${c.path.at(-1)}"\\) cmd="${c.path.join(' ')}"`), c.path.join(' '));
      assert.ok(man.includes(`.SS "haproxy\\-certd ${c.usage.replace(/-/g, '\\-')}"`), `man: ${c.usage}`);
      // The program's own options (--config, --version) are checked on the program below.
      const words = new RegExp(`^ {6}"${c.path.join(' ')}"\\) words="([^"]*)" ;;$`, 'm').exec(completion.split('if [[ $cur == -* ]]')[1]!)?.[1]?.split(' ');
      for (const n of c.options.flatMap((o) => o.names)) {
        assert.ok(words?.includes(n), `completion offers ${n} after "${c.path.join(' ')}"`);
        assert.ok(man.includes(`\\fB${n.replace(/-/g, '\\-')}\\fR`), `man: ${n}`);
      }
    }
    for (const n of tree.options.flatMap((o) => o.names)) {
      assert.ok(completion.includes(`"|${n}"`) || /^ {6}""\) words="[^"]*/m.exec(completion)![0].split(/[" ]/).includes(n), `completion: ${n}`);
      assert.ok(man.includes(`\\fB${n.replace(/-/g, '\\-')}\\fR`), `man: ${n}`);
    }
  });

  test('real bash completes commands, subcommands, options, choices and file values', async (t) => {
    if (!(await has('bash'))) return t.skip('no bash');
    const dir = await mkdtemp(join(tmpdir(), 'certd-completion-'));
    await writeFile(join(dir, 'certd.yaml'), '');
    // compopt only works inside a completion bash runs itself: outside one, it is made a no-op.
    const complete = async (line: string) => {
      const words = line.split(' ');
      const script = `compopt() { :; }; source ${COMPLETION}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _haproxy_certd; printf '%s\\n' "\${COMPREPLY[@]}"`;
      const { stdout } = await run('bash', ['--norc', '-c', script], { cwd: dir });
      return stdout.split('\n').filter(Boolean).sort();
    };
    try {
      assert.deepEqual(await complete('haproxy-certd re'), ['remove', 'renew']);
      assert.deepEqual(await complete('haproxy-certd ca '), ['export', 'init']);
      assert.deepEqual(await complete('haproxy-certd --config x.yaml ca e'), ['export'], 'an option value is not a command');
      assert.deepEqual(await complete('haproxy-certd renew --'), ['--all', '--config', '--help', '--json']);
      assert.deepEqual(await complete('haproxy-certd list --origin i'), ['import']);
      assert.deepEqual(await complete('haproxy-certd wait --policy '), ['continue', 'fail']);
      assert.deepEqual(await complete('haproxy-certd -c cer'), ['certd.yaml'], 'a file for --config');
      assert.deepEqual(await complete('haproxy-certd ca init --cert cer'), ['certd.yaml']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('man renders the page without warnings (when man-db and groff are installed)', async (t) => {
    if (!(await has('man')) || !(await has('groff'))) return t.skip('man-db or groff not installed');
    const { stdout } = await run('man', ['-l', MAN], { env: { ...process.env, MANWIDTH: '100', MAN_KEEP_FORMATTING: '', PAGER: 'cat' } });
    const text = stdout.replace(/.\x08/g, '');
    assert.match(text, /^HAPROXY-CERTD\(1\)/);
    assert.match(text, /haproxy-certd renew \[options\] \[names\.\.\.\]/);
    assert.match(text, /EXIT STATUS\n\s+0 +done/);
    const { stderr } = await run('groff', ['-man', '-Tutf8', '-ww', '-z', MAN]);
    assert.equal(stderr, '', 'groff -ww has nothing to warn about');
  });
});

describe('contrib/logrotate (for a log redirected to a file)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'certd-logrotate-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('says the daemon logs to stderr / the journal, and that it is only for a redirected log', async () => {
    const text = await readFile(LOGROTATE, 'utf8');
    assert.match(text, /stderr/);
    assert.match(text, /journal/);
    assert.match(text, /StandardError=append:\/var\/log\/haproxy-certd\/certd\.log/);
  });

  test('real logrotate rotates a file the daemon keeps open: copied, truncated, the writer goes on', async (t) => {
    if (!(await has('logrotate'))) return t.skip('logrotate not installed');
    const log = join(dir, 'certd.log');
    const conf = join(dir, 'logrotate.conf');
    await writeFile(conf, (await readFile(LOGROTATE, 'utf8')).replace('/var/log/haproxy-certd/*.log', join(dir, '*.log')), { mode: 0o644 });
    // As systemd's StandardError=append: opens it, held for the daemon's life.
    const writer = await open(log, 'a');
    try {
      await writer.write('{"msg":"before"}\n');
      const { stderr } = await run('logrotate', ['--force', '--state', join(dir, 'state'), conf]);
      assert.equal(stderr, '');
      await writer.write('{"msg":"after"}\n');
      assert.equal(await readFile(`${log}.1`, 'utf8'), '{"msg":"before"}\n', 'delaycompress: the newest rotated file stays plain');
      assert.equal(await readFile(log, 'utf8'), '{"msg":"after"}\n', 'the same open file, truncated, written on');
      await appendFile(log, '');
      assert.deepEqual((await readdir(dir)).filter((f) => f.startsWith('certd.log')).sort(), ['certd.log', 'certd.log.1']);
    } finally {
      await writer.close();
    }
  });
});

test('package.json files ships contrib (completion, man page, logrotate); operations.md says how to install them', async () => {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT });
  const files = (JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  for (const f of ['contrib/completion/haproxy-certd.bash', 'contrib/man/haproxy-certd.1', 'contrib/logrotate/haproxy-certd']) {
    assert.ok(files.includes(f), `${f} in the tarball (files: ${pkg.files.join(', ')})`);
  }
  const ops = await readFile(join(ROOT, 'docs/operations.md'), 'utf8');
  for (const f of ['completion/haproxy-certd.bash', 'man/haproxy-certd.1', 'logrotate/haproxy-certd', 'api.md']) assert.ok(ops.includes(f), `operations.md mentions ${f}`);
});
