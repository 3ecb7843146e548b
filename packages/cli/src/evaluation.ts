import type { Container } from 'inversify';
import {
  inputMasksToFeatures,
  loadTrainedModel,
  resolvePlugin,
  UserError,
  type AttributionContext,
  type Attributor,
  type Explanation,
  type FaithfulExplainer,
  type Inputs,
  type Metric,
  type Pipeline,
  type TrainedModel,
} from '@sop/core';
import { toFaithful } from '@sop/baselines';
import {
  defaultMetricNames,
  evaluate,
  explanationView,
  markdownTable,
  writeReport,
  type EvaluationResult,
  type ReportExamples,
} from '@sop/metrics';
import type { CliContext } from './context.js';
import { limitInputs } from './commands/predict.js';

export interface EvaluationRequest {
  pipeline: Pipeline;
  runDir?: string;
  /** Loaded from runDir by runEvaluation. */
  trained?: TrainedModel;
  methods?: string[];
  metrics?: string[];
  limit?: number;
  budget?: number;
  keep?: number;
  reportDir?: string;
  force?: boolean;
  /** Number of examples rendered in the report (default 4). */
  examples?: number;
  sweepMode?: 'explain' | 'mask';
}

export interface EvaluationOutcome {
  result: EvaluationResult;
  table: string;
  files: string[];
}

/** Post-hoc methods whose access needs gradients. */
export const BLACK_BOX_DEFAULTS = ['lime', 'kernel-shap', 'rise', 'archipelago'];
export const GRADIENT_DEFAULTS = ['integrated-gradients', 'gradcam', 'fullgrad'];

export function defaultMethods(pipeline: Pipeline, hasSop: boolean): string[] {
  const m = hasSop ? ['sop'] : [];
  m.push(...BLACK_BOX_DEFAULTS);
  if (pipeline.backbone.capabilities.vjp) m.push(...GRADIENT_DEFAULTS);
  return m;
}

/** Feature-level ground truth of the test split, when the data has any. */
export function groundTruthOf(pipeline: Pipeline, inputs: Inputs, n: number): Float32Array | undefined {
  const test = pipeline.dataset.test;
  const d = pipeline.space.numFeatures;
  if (test.featureMasks && test.featureMasks.length >= n * d) return test.featureMasks.subarray(0, n * d);
  if (test.inputMasks) {
    const row = test.inputMasks.data.length / test.inputMasks.shape[0];
    const masks = { data: test.inputMasks.data.subarray(0, n * row), shape: [n, ...test.inputMasks.shape.slice(1)] };
    return inputMasksToFeatures(pipeline.space, inputs, masks);
  }
  return undefined;
}

export async function buildExplainers(container: Container, req: EvaluationRequest, names: string[]): Promise<FaithfulExplainer[]> {
  const { pipeline } = req;
  const context: AttributionContext = {
    backbone: pipeline.backbone,
    space: pipeline.space,
    masker: pipeline.masker,
    reference: pipeline.dataset.train.inputs,
    rng: pipeline.rng,
  };
  const out: FaithfulExplainer[] = [];
  for (const raw of names) {
    const name = raw.trim();
    if (name === 'sop') {
      const trained = req.trained;
      if (!trained) throw new UserError("method 'sop' needs a trained model", 'pass the run directory written by sop train (sop evaluate RUN_DIR), or drop sop from --methods');
      if (!trained.explainer) throw new UserError(`the run in ${req.runDir} is a '${trained.kind}' model, which has no group explanation`, 'train with model: {use: sop}');
      out.push(trained.explainer);
      continue;
    }
    const value = resolvePlugin<Attributor | { create(c: AttributionContext, d?: object): FaithfulExplainer }>(container, 'attributor', name, '--methods');
    if ('attribute' in value) {
      if (value.access === 'gradient' && !pipeline.backbone.capabilities.vjp) {
        throw new UserError(`method '${name}' needs gradients but backbone '${pipeline.backbone.name}' has none`, 'use an onnx or mlp backbone, or a black-box method (lime, kernel-shap, rise, archipelago)');
      }
      out.push(toFaithful(value, context, { budget: req.budget }));
    } else out.push(value.create(context, { budget: req.budget }));
  }
  return out;
}

/** Tokens of one example for text views (from the data's vocabulary or the backbone's tokenizer). */
export function tokensOf(pipeline: Pipeline, inputs: Inputs, i: number): string[] | undefined {
  if (!(inputs.x.data instanceof BigInt64Array)) return undefined;
  const L = inputs.x.shape[1];
  const ids = Array.from(inputs.x.data.subarray(i * L, (i + 1) * L), Number);
  const vocab = pipeline.dataset.meta?.vocab as string[] | undefined;
  if (vocab) return ids.map((id) => vocab[id] ?? `#${id}`);
  const tok = (pipeline.backbone as unknown as { tokenizer?: { decode?(ids: number[]): string; model?: { vocab?: string[] } } }).tokenizer;
  if (tok?.decode) return ids.map((id) => tok.decode!([id]));
  return ids.map(String);
}

export function reportExamples(pipeline: Pipeline, inputs: Inputs, explanations: Array<{ method: string; exp: Explanation }>, count: number): ReportExamples {
  const modality = pipeline.dataset.modality;
  const ex: ReportExamples = { images: [], texts: [], tabular: [] };
  const n = Math.min(count, inputs.x.shape[0]);
  for (const { method, exp } of explanations) {
    for (let i = 0; i < n; i++) {
      const view = explanationView(exp, i, {
        inputs,
        space: pipeline.space,
        modality,
        tokens: modality === 'text' ? tokensOf(pipeline, inputs, i) : undefined,
        classNames: pipeline.dataset.classNames,
        title: `${method} · test example ${i}`,
      });
      if (view.image) ex.images!.push({ ...view.image, title: `${method} · #${i} · ${view.prediction ?? ''}` });
      if (view.text) ex.texts!.push({ ...view.text, title: `${method} · #${i} · ${view.prediction ?? ''}` });
      if (view.tabular) ex.tabular!.push({ ...view.tabular, title: `${method} · #${i} · ${view.prediction ?? ''}` });
    }
  }
  return ex;
}

export async function runEvaluation(ctx: CliContext, container: Container, req: EvaluationRequest): Promise<EvaluationOutcome> {
  const { pipeline } = req;
  if (req.runDir && !req.trained) {
    // a run directory: evaluate the trained model, and explain its (trained, frozen) backbone post hoc
    req = { ...req, trained: await loadTrainedModel(req.runDir, pipeline) };
    pipeline.backbone = req.trained!.backbone;
  }
  const ev = pipeline.config.evaluate ?? {};
  const methods = req.methods ?? ev.methods ?? defaultMethods(pipeline, Boolean(req.trained?.explainer));
  const limit = req.limit ?? ev.limit;
  const budget = req.budget ?? ev.budget ?? 20;
  const keep = req.keep ?? ev.keep ?? (pipeline.config.model.keep as number | undefined) ?? 0.2;
  const inputs = limitInputs(pipeline.dataset.test.inputs, limit);
  const n = inputs.x.shape[0];
  const groundTruth = groundTruthOf(pipeline, inputs, n);
  const explainers = await buildExplainers(container, { ...req, budget }, methods);
  const metricNames =
    req.metrics ?? ev.metrics ?? defaultMetricNames(pipeline.config.task, pipeline.dataset.modality, { groundTruth: Boolean(groundTruth), groups: methods.includes('sop') });
  const metrics = metricNames.map((m) => resolvePlugin<Metric>(container, 'metric', m, '--metrics'));
  const bars = new Map<string, ReturnType<CliContext['progress']>>();
  const result = await evaluate({
    explainers,
    backbone: pipeline.backbone,
    space: pipeline.space,
    masker: pipeline.masker,
    inputs,
    labels: pipeline.dataset.test.labels.subarray(0, n * (pipeline.config.task === 'regression' ? pipeline.dataset.numOutputs : 1)),
    task: pipeline.config.task,
    modality: pipeline.dataset.modality,
    numOutputs: pipeline.dataset.numOutputs,
    groundTruth,
    metrics,
    keep,
    budget,
    seed: pipeline.config.train.seed,
    // -F attributions do not depend on keep (same seed), so ranking once and masking is the same sweep at 1/10 the cost
    sweepMode: req.sweepMode ?? 'mask',
    onProgress: (e) => {
      const key = `${e.stage} ${e.method}`;
      let bar = bars.get(key);
      if (!bar) bars.set(key, (bar = ctx.progress(`evaluate ${key}`, e.total)));
      bar.update(e.done, '', e.total);
    },
  });
  const table = markdownTable(result);
  let files: string[] = [];
  if (req.reportDir) {
    const exCount = req.examples ?? 4;
    const shown: Array<{ method: string; exp: Explanation }> = [];
    const exInputs = limitInputs(inputs, exCount);
    for (const e of explainers.slice(0, 3)) {
      shown.push({ method: e.name, exp: await e.explain(exInputs, { keep, budget, seed: pipeline.config.train.seed }) });
    }
    files = writeReport(req.reportDir, result, {
      config: pipeline.config,
      examples: reportExamples(pipeline, exInputs, shown, exCount),
      title: `sop evaluate: ${pipeline.config.name}`,
      force: req.force,
    });
  }
  return { result, table, files };
}

