import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pipeline } from '../config/pipeline.js';
import type { TrainingEvent, TrainingListener } from '../events.js';
import { UserError } from '../errors.js';
import { Rng } from '../rng.js';
import { prepareOutDir, writeFileAtomic } from '../io.js';
import type { ModelFactory, RankedFeature, TrainedModel } from '../models/model.js';
import { builtinModelFactories } from './builtin-models.js';
import { stageSettings, mixSeed } from './trainer.js';
import { takePart, predictChunked, taskMetrics } from './helpers.js';
import type { RunContext, SplitPart } from './run.js';

export interface TrainPipelineOptions {
  /** Run folder (created; must be empty unless `resume` or `force`). */
  outDir: string;
  /** Continue a killed run from its last checkpoints. */
  resume?: boolean;
  /** Allow a non-empty outDir when not resuming. */
  force?: boolean;
  listener?: TrainingListener;
  /** A model plugin resolved from the container; default: the built-in named by `config.model.use`. */
  model?: ModelFactory;
}

export interface TrainPipelineResult {
  /** Test-split metrics: accuracy (classification) or mse (regression), plus model extras. */
  metrics: Record<string, number>;
  /** ScoresActivation's final global ranking. */
  ranking?: RankedFeature[];
  runDir: string;
}

/** Written to `<run>/run.json`; `loadTrainedModel` reads it. */
export interface RunInfo {
  format: 'sop-run-v1';
  model: string;
  task: string;
  numOutputs: number;
  numFeatures: number;
  featureNames: string[];
  validationRows: number;
  trainRows: number;
  config: unknown;
}

export const RUN_FILE = 'run.json';
export const LOG_FILE = 'train-log.jsonl';
export const METRICS_FILE = 'metrics.json';
export const RANKING_FILE = 'ranking.json';

/** Pick the model factory for the pipeline's `model.use`. */
export function modelFactoryFor(pipeline: Pipeline, override?: ModelFactory): ModelFactory {
  if (override) return override;
  const name = pipeline.config.model.use;
  const f = builtinModelFactories[name];
  if (!f) throw new UserError(`model.use: unknown model '${name}'`, `use one of: ${Object.keys(builtinModelFactories).join(', ')} (or load a model plugin)`);
  return f;
}

/** Seeded split of the training split into training rows and a validation hold-out. */
export function validationSplit(pipeline: Pipeline): { train: SplitPart; validation: SplitPart } {
  const tr = pipeline.dataset.train;
  const n = tr.inputs.x.shape[0];
  const frac = pipeline.config.train.validationSplit ?? 0.1;
  if (!(typeof frac === 'number' && frac >= 0 && frac < 1)) throw new UserError(`train.validationSplit: ${frac} is not in [0, 1)`, 'use e.g. validationSplit: 0.1');
  const nVal = n >= 2 ? Math.min(n - 1, Math.round(n * frac)) : 0;
  const perm = new Rng(mixSeed(pipeline.config.train.seed ?? 0, 'validation', 0)).permutation(n);
  const val = perm.slice(0, nVal).sort();
  const rest = perm.slice(nVal).sort();
  const w = pipeline.config.task === 'classification' ? 1 : pipeline.dataset.numOutputs;
  const full: SplitPart = { inputs: tr.inputs, labels: tr.labels, rows: n };
  return { train: takePart(full, rest, w), validation: takePart(full, val, w) };
}

function featureNames(p: Pipeline): string[] {
  return p.dataset.featureNames?.length === p.space.numFeatures ? p.dataset.featureNames : p.space.featureNames();
}

/**
 * Train the pipeline's model into `outDir` (see train/README.md for the folder layout) and report test-split
 * metrics. Same config + seed ⇒ bit-identical weights. With `resume`, finished stages and epochs are kept.
 */
export async function trainPipeline(pipeline: Pipeline, opts: TrainPipelineOptions): Promise<TrainPipelineResult> {
  const { outDir } = opts;
  const resume = opts.resume ?? false;
  const factory = modelFactoryFor(pipeline, opts.model);
  if (resume) {
    if (!existsSync(join(outDir, RUN_FILE))) throw new UserError(`--resume: ${outDir} is not a sop train run folder (no ${RUN_FILE})`, 'point --out at the folder of the interrupted run, or drop --resume');
    if (existsSync(join(outDir, METRICS_FILE))) throw new UserError(`--resume: the run in ${outDir} already finished`, 'start a new run with another --out');
  } else prepareOutDir(outDir, opts.force ?? false);
  mkdirSync(join(outDir, 'checkpoints'), { recursive: true });
  const logPath = join(outDir, LOG_FILE);
  const emit = (e: TrainingEvent): void => {
    appendFileSync(logPath, JSON.stringify({ time: new Date().toISOString(), ...e }) + '\n');
    opts.listener?.(e);
  };
  const { train, validation } = validationSplit(pipeline);
  const names = featureNames(pipeline);
  if (!resume) {
    const info: RunInfo = {
      format: 'sop-run-v1',
      model: factory.name,
      task: pipeline.config.task,
      numOutputs: pipeline.dataset.numOutputs,
      numFeatures: pipeline.space.numFeatures,
      featureNames: names,
      trainRows: train.rows,
      validationRows: validation.rows,
      config: pipeline.config,
    };
    writeFileAtomic(join(outDir, RUN_FILE), JSON.stringify(info, null, 2) + '\n');
  }
  const run: RunContext = {
    outDir,
    resume,
    emit,
    train,
    validation,
    settings: (stage) => stageSettings(pipeline.config.train, stage),
    featureNames: names,
  };
  const model = await factory.train(pipeline, run);
  emit({ type: 'stage', stage: 'test', message: `evaluating on ${pipeline.dataset.test.inputs.x.shape[0]} test rows` });
  const test = pipeline.dataset.test;
  const metrics = taskMetrics(pipeline.config.task, await predictChunked(model.predict, test.inputs, 256), test.labels);
  if (model.extraMetrics) Object.assign(metrics, await model.extraMetrics(test.inputs, test.labels));
  const ranking = model.ranking?.();
  if (ranking) writeFileAtomic(join(outDir, RANKING_FILE), JSON.stringify(ranking, null, 2) + '\n');
  writeFileAtomic(join(outDir, METRICS_FILE), JSON.stringify(metrics, null, 2) + '\n');
  emit({ type: 'done', stage: factory.name, metrics });
  return { metrics, ranking, runDir: outDir };
}

/** Read `<run>/run.json`. */
export function readRunInfo(runDir: string): RunInfo {
  const f = join(runDir, RUN_FILE);
  if (!existsSync(f)) throw new UserError(`${runDir} is not a sop train run folder (no ${RUN_FILE})`, 'point at the --out folder of a finished sop train run');
  return JSON.parse(readFileSync(f, 'utf8')) as RunInfo;
}

/**
 * Rebuild a trained model from a run folder. `pipeline` is built from the same config (e.g. the copy in run.json);
 * its MLP backbone gets the run's weights.
 */
export async function loadTrainedModel(runDir: string, pipeline: Pipeline, model?: ModelFactory): Promise<TrainedModel> {
  const info = readRunInfo(runDir);
  if (info.model !== pipeline.config.model.use && !model) {
    throw new UserError(`run ${runDir} trained model '${info.model}' but the config names '${pipeline.config.model.use}'`, 'use the config saved with the run');
  }
  return (model ?? modelFactoryFor(pipeline)).load(runDir, pipeline);
}
