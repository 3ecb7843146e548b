import type { CommandModule } from 'yargs';
import { resolvePlugin, trainPipeline, type ModelFactory } from '@sop/core';
import type { CliContext, GlobalArgs } from '../context.js';
import { loadPipelineFor, saveRunSource, type ConfigArgs } from '../pipeline-loader.js';
import { trainingListener } from '../training-view.js';

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
      const { pipeline, loaded } = await loadPipelineFor(ctx, args, args.config!);
      const out = ctx.resolvePath(args.out ?? `runs/${pipeline.config.name}`);
      const container = await ctx.container(args);
      const model = resolvePlugin<ModelFactory>(container, 'model', pipeline.config.model.use, 'model.use');
      const result = await trainPipeline(pipeline, { outDir: out, resume: args.resume, force: args.force, model, listener: trainingListener(ctx) });
      saveRunSource(out, pipeline, loaded);
      if (!args.json) {
        ctx.io.out(`trained ${pipeline.config.model.use} → ${out}`);
        for (const [k, v] of Object.entries(result.metrics)) ctx.io.out(`  ${k}: ${v.toFixed(4)}`);
        if (result.ranking) ctx.io.out(`  ranking: ${result.ranking.slice(0, 10).map((r) => r.feature).join(' > ')}`);
      }
      ctx.json(args, { out, metrics: result.metrics, ...(result.ranking ? { ranking: result.ranking } : {}) });
    },
  };
}
