import { Argument, type Command } from 'commander';
import { bashCompletion } from '../completion.js';
import { manPage } from '../man-page.js';

/**
 * Hidden commands that print what is generated from the program itself: the shell completion
 * and the man page (contrib/ holds copies; test/cli-contrib.test.ts checks they are current).
 */
export function registerGenerated(program: Command): void {
  program
    .command('completion', { hidden: true })
    .description('print the shell completion script')
    .addArgument(new Argument('<shell>', 'the shell').choices(['bash']))
    .action(() => void process.stdout.write(bashCompletion(program)));
  program
    .command('man', { hidden: true })
    .description('print the man page (roff)')
    .action(() => void process.stdout.write(manPage(program)));
}
