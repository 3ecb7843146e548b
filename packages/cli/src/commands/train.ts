import type { CommandModule } from 'yargs';
import { NotAvailableError, prepareOutDir } from '@sop/core';
import type { CliContext, GlobalArgs } from '../context.js';
import { loadPipelineFor, type ConfigArgs } from '../pipeline-loader.js';

interface TrainArgs extends ConfigArgs {
  out?: string;
  force?: boolean;
  resume?: boolean;
}

export function trainCommand(ctx: CliContext): CommandModule<GlobalArgs, TrainArgs> {
  return {
    command: 'train <config>',
    describe: 'Train what `model` names (sop | scores-activation | none) and write a run directory',
    builder: (y) =>
      y
        .positional('config', { type: 'string', demandOption: true, describe: 'pipeline config (.yaml/.json)' })
        .option('out', { type: 'string', describe: 'run directory (default runs/<name>)' })
        .option('force', { type: 'boolean', describe: 'overwrite a non-empty --out' })
        .option('resume', { type: 'boolean', describe: 'continue a killed run in --out from its last checkpoint' })
        .option('set', { type: 'string', array: true, describe: 'override a config key: --set a.b=value' }) as any,
    handler: async (args) => {
      const { pipeline } = await loadPipelineFor(ctx, args, args.config!);
      const out = ctx.resolvePath(args.out ?? `runs/${pipeline.config.name}`);
      if (!args.resume) prepareOutDir(out, args.force);
      throw new NotAvailableError('sop train is not available yet');
    },
  };
}
