import type { Command } from 'commander';
import { allCommands, commandTree, type CommandInfo, type OptionInfo } from './command-tree.js';

/** Placeholders whose values are paths: completed as files, or directories. */
const FILE_VALUE = /file|\.cfg/;
const DIR_VALUE = /^dir$/;

/** A bash case pattern for "command so far|word", quoted so every character in it is literal. */
const pattern = (cmd: string, word: string) => `"${cmd}|${word}"`;
const quoted = (s: string) => JSON.stringify(s);

/** What bash offers after an option that takes a value. */
function valueReply(v: NonNullable<OptionInfo['value']>): string {
  if (v.choices) return `COMPREPLY=($(compgen -W ${quoted(v.choices.join(' '))} -- "$cur"))`;
  if (FILE_VALUE.test(v.placeholder)) return 'compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur")';
  if (DIR_VALUE.test(v.placeholder)) return 'compopt -o filenames; mapfile -t COMPREPLY < <(compgen -d -- "$cur")';
  return 'COMPREPLY=()';
}

/**
 * The bash completion script for the program: commands and subcommands, each one's options,
 * the choices of options that have them, paths for file and directory values. Program options
 * (--config) are offered after a command too, since commander accepts them there. Pure.
 */
export function bashCompletion(program: Command): string {
  const name = program.name();
  const fn = `_${name.replace(/\W/g, '_')}`;
  const tree = commandTree(program);
  const commands = allCommands(tree);
  const key = (c: CommandInfo) => c.path.join(' ');
  const withGlobal = (c: CommandInfo) => (c === tree ? c.options : [...c.options, ...tree.options.filter((o) => o.value)]);
  const valued = (c: CommandInfo) => withGlobal(c).filter((o) => o.value);

  const skipValue = commands.flatMap((c) => valued(c).flatMap((o) => o.names.map((n) => pattern(key(c), n))));
  const descend = commands.flatMap((c) => c.commands.map((sub) => `      ${pattern(key(c), sub.path.at(-1)!)}) cmd=${quoted(key(sub))} ;;`));
  const values = commands.flatMap((c) => valued(c).map((o) => `    ${o.names.map((n) => pattern(key(c), n)).join(' | ')}) ${valueReply(o.value!)}; return ;;`));
  const wordsBy = (pick: (c: CommandInfo) => string[]) => commands.map((c) => `      ${quoted(key(c))}) words=${quoted([...new Set(pick(c))].join(' '))} ;;`);

  return [
    `# bash completion for ${name}`,
    `# Generated from the program by \`${name} completion bash\`: do not edit, regenerate.`,
    `# Install: ${name} completion bash > /etc/bash_completion.d/${name}`,
    `${fn}() {`,
    '  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}',
    '  local cmd="" w i skip=0 words=""',
    '  # The command so far: the words before the cursor that are not options or option values.',
    '  for ((i = 1; i < COMP_CWORD; i++)); do',
    '    w=${COMP_WORDS[i]}',
    '    if ((skip)); then skip=0; continue; fi',
    '    case "$cmd|$w" in',
    `      ${skipValue.join(' | ')}) skip=1; continue ;;`,
    '    esac',
    '    [[ $w == -* ]] && continue',
    '    case "$cmd|$w" in',
    ...descend,
    '    esac',
    '  done',
    '  case "$cmd|$prev" in',
    ...values,
    '  esac',
    '  if [[ $cur == -* ]]; then',
    '    case "$cmd" in',
    ...wordsBy((c) => withGlobal(c).flatMap((o) => o.names)),
    '    esac',
    '  else',
    '    case "$cmd" in',
    ...wordsBy((c) => c.commands.map((s) => s.path.at(-1)!)),
    '    esac',
    '  fi',
    '  COMPREPLY=($(compgen -W "$words" -- "$cur"))',
    '}',
    `complete -F ${fn} ${name}`,
    '',
  ].join('\n');
}
