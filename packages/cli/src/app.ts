import yargs from 'yargs';
import type { Argv } from 'yargs';
import { formatError, SopError, UserError } from '@sop/core';
import { CliContext, type GlobalArgs } from './context.js';
import { processIO, type CliIO } from './io.js';
import { pluginsCommand } from './commands/plugins.js';
import { pipelineCommands } from './commands/pipeline-commands.js';

/** Run the `sop` CLI on `argv` (without node and script). Returns the exit code: 0 ok, 1 user error, 2 internal. */
export async function runCli(argv: string[], io: CliIO = processIO): Promise<number> {
  const ctx = new CliContext(io);
  let failure: unknown;
  let parser: Argv<GlobalArgs> = yargs(argv)
    .scriptName('sop')
    .usage('$0 <command> [options]\n\nTurn a trained model into a self-explaining Sum-of-Parts model, and compare it with post-hoc attribution methods.')
    .option('json', { type: 'boolean', describe: 'print one JSON object as the last stdout line' })
    .option('plugin', { type: 'string', array: true, describe: 'load a plugin (file path or package name); repeatable' })
    .command(pluginsCommand(ctx));
  for (const c of pipelineCommands(ctx)) parser = parser.command(c);
  parser = parser
    .demandCommand(1, 'name a command: sop <command> --help lists its options')
    .recommendCommands()
    .strict()
    .help()
    .alias('h', 'help')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => {
      failure = err ?? new UserError(msg ?? 'invalid arguments', 'run sop --help, or sop <command> --help');
      throw failure;
    }) as Argv<GlobalArgs>;
  try {
    await parser.parseAsync();
  } catch (e) {
    failure ??= e;
  }
  if (failure === undefined) return 0;
  const code = failure instanceof UserError ? 1 : failure instanceof SopError ? 2 : isUsageError(failure) ? 1 : 2;
  io.err(`sop: ${code === 1 ? 'error' : 'internal error'}: ${formatError(failure)}`);
  return code;
}

function isUsageError(e: unknown): boolean {
  return e instanceof Error && e.name === 'YError';
}
