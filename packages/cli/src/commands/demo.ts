import type { CommandModule } from 'yargs';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPipeline, configFromObject, InternalError, prepareOutDir, resolvePlugin, trainPipeline, type ModelFactory } from '@sop/core';
import { saveRunSource } from '../pipeline-loader.js';
import type { CliContext, GlobalArgs } from '../context.js';
import { trainingListener } from '../training-view.js';
import { runEvaluation } from '../evaluation.js';

interface DemoArgs extends GlobalArgs {
  out?: string;
  quick?: boolean;
  force?: boolean;
}

/** The repo's fixtures folder (the demo's bundled model and data). */
export function fixturesDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../../../fixtures');
}

/**
 * The embedded default: SOP over the bundled tiny ViT (a PyTorch export) on 16×16 shapes with object masks, 4×4-pixel
 * patches as features. Same as examples/shapes-vit-sop.yaml.
 */
export function demoConfig(quick: boolean): Record<string, unknown> {
  const f = (name: string) => join(fixturesDir(), 'onnx', name);
  return {
    name: quick ? 'sop-demo-quick' : 'sop-demo',
    task: 'classification',
    data: {
      use: 'npy',
      x: f('shapes-train-x.npy'),
      y: f('shapes-train-y.npy'),
      masks: f('shapes-train-masks.npy'),
      classNames: ['square', 'disk', 'triangle', 'cross'],
      test: { x: f('shapes-test-x.npy'), y: f('shapes-test-y.npy'), masks: f('shapes-test-masks.npy') },
    },
    features: { use: 'patches', size: [4, 4] },
    backbone: { use: 'onnx', path: f('shapes-vit.onnx'), output: 'logits', hidden: 'hidden' },
    model: { use: 'sop', groups: 16, keep: 0.25 },
    train: { epochs: quick ? 2 : 15, batchSize: 16, lr: 2e-3, seed: 0 },
    evaluate: {
      methods: ['sop', 'lime', 'kernel-shap', 'rise', 'archipelago', 'integrated-gradients', 'gradcam'],
      limit: quick ? 24 : 150,
      budget: 20,
    },
  };
}

export function demoCommand(ctx: CliContext): CommandModule<GlobalArgs, DemoArgs> {
  return {
    command: 'demo',
    describe: 'End to end on the bundled model: convert it to SOP (train), evaluate against the baselines, write an HTML report',
    builder: (y) =>
      y
        .option('out', { type: 'string', default: 'sop-demo', describe: 'output folder (run, report)' })
        .option('quick', { type: 'boolean', describe: 'a reduced run (under a minute)' })
        .option('force', { type: 'boolean', describe: 'overwrite a non-empty --out' }) as any,
    handler: async (args) => {
      const started = Date.now();
      if (!existsSync(join(fixturesDir(), 'onnx', 'shapes-vit.onnx'))) {
        throw new InternalError(`the demo's bundled model is missing: ${join(fixturesDir(), 'onnx', 'shapes-vit.onnx')}`, 'run the demo from a complete clone of the repository');
      }
      const out = ctx.resolvePath(args.out ?? 'sop-demo');
      prepareOutDir(out, args.force);
      const loaded = configFromObject(demoConfig(Boolean(args.quick)), fixturesDir());
      const container = await ctx.container(args);
      ctx.io.err(`sop demo: SOP over the bundled ViT (shapes, 16 patch features), ${loaded.config.train.epochs} epochs → ${out}`);
      const pipeline = await buildPipeline(container, loaded, { onStage: (s) => ctx.io.err(`sop: ${s}`) });
      const runDir = join(out, 'run');
      const model = resolvePlugin<ModelFactory>(container, 'model', 'sop');
      const trained = await trainPipeline(pipeline, { outDir: runDir, force: args.force, model, listener: trainingListener(ctx) });
      saveRunSource(runDir, pipeline, loaded);
      ctx.io.err(`sop demo: evaluating ${loaded.config.evaluate!.methods!.join(', ')} on ${loaded.config.evaluate!.limit} test images (budget ${loaded.config.evaluate!.budget}, keep ${loaded.config.model.keep})`);
      const reportDir = join(out, 'report');
      const { result, table, files } = await runEvaluation(ctx, container, { pipeline, runDir, reportDir, force: args.force, examples: 3 });
      const report = files.find((f) => f.endsWith('report.html'))!;
      const seconds = (Date.now() - started) / 1000;
      ctx.say(args, '');
      ctx.say(args, table);
      ctx.say(args, `SOP test accuracy ${trained.metrics.accuracy.toFixed(3)} (backbone alone ${trained.metrics.backbone_accuracy?.toFixed(3)}); fidelity gap max|Σ contributions − output| = ${trained.metrics.max_abs_sum_error?.toExponential(1)}`);
      ctx.say(args, `report: ${report}`);
      ctx.say(args, `(${seconds.toFixed(0)} s)`);
      ctx.json(args, { out, report, run: runDir, train: trained.metrics, rows: result.rows, seconds });
    },
  };
}
