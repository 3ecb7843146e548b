import type { CommandModule } from 'yargs';
import { firstRows, loadTrainedModel, type Inputs } from '@sop/core';
import type { CliContext, GlobalArgs } from '../context.js';
import { loadPipelineFor, type ConfigArgs } from '../pipeline-loader.js';

interface PredictArgs extends ConfigArgs {
  limit?: number;
  outputs?: string;
}

/** The first `limit` rows (all when unset). */
export function limitInputs(inputs: Inputs, limit?: number): Inputs {
  return limit ? firstRows(inputs, limit) : inputs;
}

export function toRows(data: Float32Array, cols: number): number[][] {
  const rows: number[][] = [];
  for (let i = 0; i < data.length / cols; i++) rows.push(Array.from(data.subarray(i * cols, (i + 1) * cols), (v) => +v.toPrecision(7)));
  return rows;
}

export function predictCommand(ctx: CliContext): CommandModule<GlobalArgs, PredictArgs> {
  return {
    command: 'predict <config>',
    describe: 'Outputs on the test split: the backbone (for a config) or the trained model (for a run directory)',
    builder: (y) =>
      y
        .positional('config', { type: 'string', describe: 'pipeline config (.yaml/.json) or run directory', demandOption: true })
        .option('set', { type: 'string', array: true, describe: 'override a config key: --set a.b=value' })
        .option('limit', { type: 'number', describe: 'only the first N test examples' })
        .option('outputs', { type: 'string', choices: ['output', 'all'], default: 'output', describe: "'all' adds the hidden state" }) as any,
    handler: async (args) => {
      const { pipeline, loaded } = await loadPipelineFor(ctx, args, args.config!);
      const inputs = limitInputs(pipeline.dataset.test.inputs, args.limit);
      if (loaded.runDir) {
        // a trained run: the model's own prediction (SOP's weighted sum of groups, ScoresActivation + MLP, ...)
        const trained = await loadTrainedModel(loaded.runDir, pipeline);
        const out = await trained.predict(inputs);
        const rows = toRows(out.data, out.shape[1]);
        if (!args.json) {
          ctx.io.out(`${rows.length} predictions of the trained ${trained.kind} model (${out.shape[1]} outputs each)`);
          for (const r of rows.slice(0, 10)) ctx.io.out('  ' + r.map((v) => v.toFixed(4)).join(' '));
        }
        ctx.json(args, { outputs: rows, model: trained.kind });
        return;
      }
      const wantHidden = args.outputs === 'all' && pipeline.backbone.capabilities.hidden;
      const res = await pipeline.backbone.forward(inputs, wantHidden ? { outputs: ['hidden'] } : {});
      const c = res.output.shape[1];
      const outputs = toRows(res.output.data, c);
      if (!args.json) {
        ctx.io.out(`${outputs.length} predictions (${c} outputs each)`);
        for (const r of outputs.slice(0, 10)) ctx.io.out('  ' + r.map((v) => v.toFixed(4)).join(' '));
      }
      ctx.json(args, { outputs, ...(wantHidden && res.hidden ? { hidden: toRows(res.hidden.data, res.hidden.shape[1]) } : {}) });
    },
  };
}
