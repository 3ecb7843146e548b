import type { CommandModule } from 'yargs';
import { extname } from 'node:path';
import { existsSync } from 'node:fs';
import { loadTrainedModel, UserError, writeFileAtomic, type Explanation, type Inputs } from '@sop/core';
import { explanationView, renderExplanationHtml } from '@sop/metrics';
import type { CliContext, GlobalArgs } from '../context.js';
import { loadPipelineFor, type ConfigArgs } from '../pipeline-loader.js';
import { limitInputs } from './predict.js';
import { readInputFile } from '../input-file.js';
import { parseTarget } from './attribute.js';
import { tokensOf } from '../evaluation.js';

interface ExplainArgs extends ConfigArgs {
  model?: string;
  input?: string;
  limit?: number;
  html?: string;
  keep?: number;
  target?: string;
  force?: boolean;
}

const r7 = (v: number): number => +v.toPrecision(7);

/** The JSON shape of `sop explain`: per example the output, the explained class and its groups (by |contribution|). */
export function explanationJson(exp: Explanation, d: number) {
  const g = exp.groups;
  const C = exp.numOutputs;
  const B = exp.targets.length;
  const out = [];
  for (let b = 0; b < B; b++) {
    const t = exp.targets[b];
    const groups = [];
    if (g) {
      for (let j = 0; j < g.count; j++) {
        const mask = g.masks.subarray((b * g.count + j) * d, (b * g.count + j + 1) * d);
        const features: number[] = [];
        mask.forEach((v, i) => v > 0 && features.push(i));
        const weight = g.weights[b * g.count + j];
        const output = g.outputs ? Array.from(g.outputs.subarray((b * g.count + j) * C, (b * g.count + j + 1) * C), r7) : [];
        const contribution = g.outputs ? weight * g.outputs[(b * g.count + j) * C + t] : 0;
        groups.push({ features, weight: r7(weight), scale: r7(g.scales ? g.scales[b * g.count + j] : 1), output, contribution: r7(contribution) });
      }
      groups.sort((a, b2) => Math.abs(b2.contribution) - Math.abs(a.contribution));
    }
    out.push({
      output: Array.from(exp.outputs.subarray(b * C, (b + 1) * C), r7),
      label: t,
      attributions: Array.from(exp.attributions.subarray(b * d, (b + 1) * d), r7),
      groups: groups.filter((x) => x.weight !== 0),
    });
  }
  return out;
}

export function explainCommand(ctx: CliContext): CommandModule<GlobalArgs, ExplainArgs> {
  return {
    command: 'explain <model>',
    describe: "A trained SOP model's prediction and the groups that make it (contributions sum to the output)",
    builder: (y) =>
      y
        .positional('model', { type: 'string', demandOption: true, describe: 'run directory written by sop train (model: sop)' })
        .option('input', { type: 'string', describe: 'explain inputs from a file (.json/.npy/.csv/.png/.jpg/.txt/.jsonl) instead of the test split' })
        .option('limit', { type: 'number', default: 1, describe: 'number of test examples (without --input)' })
        .option('keep', { type: 'number', describe: 'fraction of features per group (default: as trained)' })
        .option('target', { type: 'string', default: 'predicted', describe: 'predicted | label | class index' })
        .option('html', { type: 'string', describe: 'write a self-contained HTML view of the groups (example i>0 → FILE-i.html)' })
        .option('force', { type: 'boolean', describe: 'overwrite --html files' })
        .option('set', { type: 'string', array: true, describe: 'override a config key: --set a.b=value' }) as any,
    handler: async (args) => {
      const { pipeline, loaded } = await loadPipelineFor(ctx, args, args.model!);
      if (!loaded.runDir) throw new UserError(`${args.model} is a config file, not a trained model`, 'run sop train CONFIG --out DIR first, then sop explain DIR');
      const trained = await loadTrainedModel(loaded.runDir, pipeline);
      if (!trained.explainer) throw new UserError(`the run in ${loaded.runDir} is a '${trained.kind}' model, which has no groups to explain`, "train with model: {use: sop}, or use sop attribute for post-hoc attributions");
      pipeline.backbone = trained.backbone;
      const inputs: Inputs = args.input ? await readInputFile(ctx.resolvePath(args.input), pipeline) : limitInputs(pipeline.dataset.test.inputs, args.limit);
      const n = inputs.x.shape[0];
      const labels = args.input ? undefined : pipeline.dataset.test.labels.subarray(0, n);
      const target = parseTarget(args.target);
      if (target === 'label' && !labels) throw new UserError('--target label needs test-split examples', 'drop --input, or use --target predicted');
      const keep = args.keep ?? (pipeline.config.model.keep as number | undefined) ?? 0.2;
      const exp = await trained.explainer.explain(inputs, { keep, target, labels });
      const d = exp.numFeatures;
      const predictions = explanationJson(exp, d);
      const names = pipeline.space.featureNames();
      if (!args.json) {
        predictions.forEach((p, i) => {
          const cls = pipeline.dataset.classNames?.[p.label] ?? p.label;
          ctx.io.out(`example ${i}: class ${cls}, output ${p.output[p.label].toFixed(4)} = Σ ${p.groups.length} group contributions`);
          const shown = tokensOf(pipeline, inputs, i) ?? names;
          for (const g of p.groups.slice(0, 8)) {
            const feats = g.features.slice(0, 12).map((f) => shown[f] ?? f).join(', ') + (g.features.length > 12 ? ', …' : '');
            ctx.io.out(`  weight ${g.weight.toFixed(3)} scale ${g.scale.toFixed(3)} → ${g.contribution >= 0 ? '+' : ''}${g.contribution.toFixed(4)}  [${feats}]`);
          }
        });
      }
      if (args.html) {
        const base = ctx.resolvePath(args.html);
        const ext = extname(base) || '.html';
        const files: string[] = [];
        for (let i = 0; i < n; i++) {
          const file = i === 0 ? base : `${base.slice(0, base.length - extname(base).length)}-${i}${ext}`;
          if (existsSync(file) && !args.force) throw new UserError(`${file} exists`, 'pass --force to overwrite it, or choose another --html');
          const view = explanationView(exp, i, {
            inputs,
            space: pipeline.space,
            modality: pipeline.dataset.modality,
            tokens: pipeline.dataset.modality === 'text' ? tokensOf(pipeline, inputs, i) : undefined,
            classNames: pipeline.dataset.classNames,
            title: `SOP explanation · ${pipeline.config.name} · example ${i}`,
          });
          writeFileAtomic(file, renderExplanationHtml(view));
          files.push(file);
        }
        ctx.say(args, `html: ${files.join(', ')}`);
      }
      ctx.json(args, { predictions });
    },
  };
}
