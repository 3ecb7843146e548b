import type { CommandModule } from 'yargs';
import { parseSetValue, resolvePlugin, UserError, type Attributor, type Target } from '@sop/core';
import type { CliContext, GlobalArgs } from '../context.js';
import { loadPipelineFor, type ConfigArgs } from '../pipeline-loader.js';
import { limitInputs, toRows } from './predict.js';

interface AttributeArgs extends ConfigArgs {
  method?: string;
  budget?: number;
  baseline?: 'zeros' | 'mean' | 'blur';
  target?: string;
  limit?: number;
  seed?: number;
  option?: string[];
}

/** `--option layer=NAME --option output=logit` → method options (values parsed as YAML scalars). */
export function parseMethodOptions(opts: string[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const o of opts ?? []) {
    const eq = String(o).indexOf('=');
    if (eq <= 0) throw new UserError(`--option ${o}: expected KEY=VALUE`, 'e.g. --option layer=/relu3/Relu_output_0 or --option output=logit');
    out[String(o).slice(0, eq)] = parseSetValue(String(o).slice(eq + 1));
  }
  return out;
}

export function parseTarget(t: string | undefined): Target {
  if (t === undefined || t === 'predicted') return 'predicted';
  if (t === 'label') return 'label';
  const n = Number(t);
  if (!Number.isInteger(n) || n < 0) throw new UserError(`--target ${t}: expected predicted, label or a class index`, 'e.g. --target 3');
  return n;
}

export function attributeCommand(ctx: CliContext): CommandModule<GlobalArgs, AttributeArgs> {
  return {
    command: 'attribute <config>',
    describe: 'Post-hoc attribution per feature with a baseline method (lime, kernel-shap, integrated-gradients, ...)',
    builder: (y) =>
      y
        .positional('config', { type: 'string', describe: 'pipeline config or run directory', demandOption: true })
        .option('method', { type: 'string', demandOption: true, describe: 'attributor name (see sop plugins)' })
        .option('budget', { type: 'number', describe: 'model evaluations / steps per explanation (default 20)' })
        .option('baseline', { type: 'string', choices: ['zeros', 'mean', 'blur'], describe: 'what removed features become' })
        .option('target', { type: 'string', describe: 'predicted | label | class index', default: 'predicted' })
        .option('limit', { type: 'number', describe: 'only the first N test examples', default: 10 })
        .option('seed', { type: 'number', describe: 'random seed (default: train.seed)' })
        .option('option', { type: 'string', array: true, describe: 'method option KEY=VALUE, repeatable (e.g. layer=NAME for gradcam, output=logit, kernelWidth=0.5 for lime)' })
        .option('set', { type: 'string', array: true, describe: 'override a config key: --set a.b=value' }) as any,
    handler: async (args) => {
      const container = await ctx.container(args);
      const attributor = resolvePlugin<Attributor>(container, 'attributor', args.method!, '--method');
      const { pipeline } = await loadPipelineFor(ctx, args, args.config!);
      const inputs = limitInputs(pipeline.dataset.test.inputs, args.limit);
      const n = inputs.x.shape[0];
      const bar = ctx.progress(`attribute ${attributor.name}`, n);
      const res = await attributor.attribute(
        inputs,
        { backbone: pipeline.backbone, space: pipeline.space, masker: pipeline.masker, reference: pipeline.dataset.train.inputs, rng: pipeline.rng },
        {
          ...parseMethodOptions(args.option),
          target: parseTarget(args.target),
          labels: pipeline.dataset.test.labels.subarray(0, n),
          budget: args.budget,
          baseline: args.baseline,
          seed: args.seed ?? pipeline.config.train.seed,
          onProgress: (d, t) => bar.update(d, '', t),
        },
      );
      bar.update(n);
      const rows = toRows(res.values, res.numFeatures);
      const names = pipeline.space.featureNames();
      if (!args.json) {
        ctx.io.out(`${attributor.name}: ${n} explanations, ${res.meta.evaluations} model evaluations`);
        rows.slice(0, 5).forEach((r, i) => {
          const top = r.map((v, j) => [v, j] as const).sort((a, b) => Math.abs(b[0]) - Math.abs(a[0])).slice(0, 5);
          ctx.io.out(`  #${i} target ${res.targets[i]}: ` + top.map(([v, j]) => `${names[j] ?? j}=${v.toFixed(4)}`).join(', '));
        });
      }
      ctx.json(args, { method: attributor.name, evaluations: res.meta.evaluations, attributions: rows.map((values, i) => ({ target: res.targets[i], values })) });
    },
  };
}
