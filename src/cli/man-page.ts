import type { Command } from 'commander';
import { allCommands, commandTree, type OptionInfo } from './command-tree.js';
import { EXIT_CODES_HELP } from './exit-codes.js';

/** Text made safe for roff: backslashes, a leading dot or quote (a request), and minus signs. */
function roff(text: string): string {
  return text
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .replace(/^([.'])/gm, '\\&$1');
}

function optionItem(o: OptionInfo): string {
  const names = o.names.map((n) => `\\fB${roff(n)}\\fR`).join(', ');
  const value = o.value ? ` \\fI${roff(o.value.placeholder)}\\fR` : '';
  const more = [
    o.value?.choices ? `one of: ${o.value.choices.join(', ')}` : '',
    o.defaultValue !== undefined ? `default: ${String(o.defaultValue)}` : '',
  ].filter(Boolean);
  return `.TP\n${names}${value}\n${roff(o.description)}${more.length ? ` (${roff(more.join('; '))})` : ''}`;
}

const ENVIRONMENT: [string, string][] = [
  ['CERTD_CONFIG', 'the config file when --config is not given'],
  ['CERTD_LOG_LEVEL', 'log level: trace, debug, info, warn, error, fatal or silent (run logs at info, other commands at warn)'],
  ['CERTD_DEBUG', '1 prints the stack trace of an error as well'],
  ['NO_COLOR', 'set to anything: no colour, even on a terminal'],
];

/**
 * haproxy-certd(1) in roff, from the program: every visible command with its usage, description
 * and options, the exit codes as --help prints them. No date or version in it, so the checked-in
 * page changes only when the command line does. Pure.
 */
export function manPage(program: Command): string {
  const name = program.name();
  const tree = commandTree(program);
  const commands = allCommands(tree).slice(1);
  return [
    `.TH ${name.toUpperCase()} 1 "" "${name}" "User Commands"`,
    `.\\" Generated from the program by \`${name} man\`: do not edit, regenerate.`,
    '.SH NAME',
    `${roff(name)} \\- ${roff(tree.description)}`,
    '.SH SYNOPSIS',
    `.B ${roff(name)}`,
    '[\\fIoptions\\fR] \\fIcommand\\fR [\\fIarguments\\fR]',
    '.SH DESCRIPTION',
    roff(
      `${name} issues certificates (local CA, ACME) and hot-loads them into every HAProxy instance over the Runtime API, without reloads. ` +
        '`run` is the daemon; the other commands talk to it over its API, or act on the store when it is not running.',
    ),
    '.SH OPTIONS',
    ...tree.options.map(optionItem),
    '.SH COMMANDS',
    ...commands.flatMap((c) => [`.SS "${roff(`${name} ${c.usage}`)}"`, roff(c.description), ...c.options.map(optionItem)]),
    '.SH EXIT STATUS',
    '.nf',
    roff(EXIT_CODES_HELP.replace(/^\nExit codes:\n/, '')),
    '.fi',
    '.SH ENVIRONMENT',
    ...ENVIRONMENT.map(([v, what]) => `.TP\n.B ${v}\n${roff(what)}`),
    '.SH FILES',
    '.TP',
    '.I /etc/haproxy\\-certd/certd.yaml',
    'the config file searched last (after --config, $CERTD_CONFIG, ./certd.yaml)',
    '.SH SEE ALSO',
    '.BR haproxy (1);',
    'docs/operations.md, docs/config.md and docs/api.md in the source repository',
    '',
  ].join('\n');
}
