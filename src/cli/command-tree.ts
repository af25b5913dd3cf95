import type { Command, Option } from 'commander';

/** An option as the completion and the man page need it. */
export interface OptionInfo {
  /** As declared, e.g. "-c, --config <file>". */
  flags: string;
  /** Every spelling: "-c", "--config". */
  names: string[];
  description: string;
  /** What follows the option, when it takes a value: its placeholder ("file") and choices. */
  value?: { placeholder: string; choices?: readonly string[] };
  defaultValue?: unknown;
}

export interface CommandInfo {
  /** Words after the program name: [] for the program, ["ca", "export"] for a subcommand. */
  path: string[];
  /** "issue [options] <names...>" */
  usage: string;
  description: string;
  options: OptionInfo[];
  commands: CommandInfo[];
}

/** The visible commands and options (hidden ones left out, as in --help), depth first. Pure. */
export function commandTree(cmd: Command, path: string[] = []): CommandInfo {
  const help = cmd.createHelp();
  return {
    path,
    usage: [...path, cmd.usage()].join(' '),
    description: cmd.description(),
    options: help.visibleOptions(cmd).map(optionInfo),
    commands: help
      .visibleCommands(cmd)
      .filter((sub) => sub.name() !== 'help')
      .map((sub) => commandTree(sub, [...path, sub.name()])),
  };
}

function optionInfo(o: Option): OptionInfo {
  const placeholder = /[<[]([^>\]]+)[>\]]/.exec(o.flags)?.[1];
  return {
    flags: o.flags,
    names: [o.short, o.long].filter((n): n is string => n !== undefined),
    description: o.description,
    ...(placeholder ? { value: { placeholder, ...(o.argChoices ? { choices: o.argChoices } : {}) } } : {}),
    ...(o.defaultValue !== undefined ? { defaultValue: o.defaultValue } : {}),
  };
}

/** Every command below the program, flattened (the program itself first). */
export function allCommands(tree: CommandInfo): CommandInfo[] {
  return [tree, ...tree.commands.flatMap(allCommands)];
}
