import type { CommandModule } from 'yargs';
import type { CliContext, GlobalArgs } from '../context.js';
import { loadPipelineFor, type ConfigArgs } from '../pipeline-loader.js';
import { runEvaluation } from '../evaluation.js';

interface EvaluateArgs extends ConfigArgs {
  methods?: string;
  metrics?: string;
  limit?: number;
  budget?: number;
  keep?: number;
  report?: string;
  force?: boolean;
}

const list = (s?: string): string[] | undefined => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : undefined);

export function evaluateCommand(ctx: CliContext): CommandModule<GlobalArgs, EvaluateArgs> {
  return {
    command: 'evaluate <config>',
    describe: 'Methods × metrics on the test split (budget-matched), with a Markdown/CSV/JSON table and an HTML report',
    builder: (y) =>
      y
        .positional('config', { type: 'string', demandOption: true, describe: 'pipeline config, or a run directory from sop train (adds method sop)' })
        .option('methods', { type: 'string', describe: 'comma-separated: sop, lime, kernel-shap, rise, integrated-gradients, ... (each evaluated as its -F version)' })
        .option('metrics', { type: 'string', describe: 'comma-separated metric names (default: those that apply to the task and data)' })
        .option('limit', { type: 'number', describe: 'only the first N test examples' })
        .option('budget', { type: 'number', describe: 'model evaluations per explanation for post-hoc methods (default 20, SOP-matched)' })
        .option('keep', { type: 'number', describe: 'fraction of features kept (default model.keep or 0.2)' })
        .option('report', { type: 'string', describe: 'write results.{json,csv,md} and report.html to this folder' })
        .option('force', { type: 'boolean', describe: 'overwrite report files in --report' })
        .option('set', { type: 'string', array: true, describe: 'override a config key: --set a.b=value' }) as any,
    handler: async (args) => {
      const { pipeline, loaded } = await loadPipelineFor(ctx, args, args.config!);
      const container = await ctx.container(args);
      const { result, table, files } = await runEvaluation(ctx, container, {
        pipeline,
        runDir: loaded.runDir,
        methods: list(args.methods),
        metrics: list(args.metrics),
        limit: args.limit,
        budget: args.budget,
        keep: args.keep,
        reportDir: args.report ? ctx.resolvePath(args.report) : undefined,
        force: args.force,
      });
      ctx.say(args, table);
      if (files.length) ctx.say(args, `report: ${files.find((f) => f.endsWith('.html')) ?? files[0]}`);
      ctx.json(args, { rows: result.rows, examples: result.numExamples, keep: result.keep, budget: result.budget, ...(files.length ? { files } : {}) });
    },
  };
}
