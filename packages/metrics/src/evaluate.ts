import {
  UserError,
  batchSize,
  sizeOf,
  sliceRows,
  type Backbone,
  type Explanation,
  type ExplainOptions,
  type FaithfulExplainer,
  type FeatureSpace,
  type Inputs,
  type Masker,
  type MethodRun,
  type Metric,
  type MetricDirection,
  type MetricCategory,
  type MetricRequirement,
  type MetricValue,
  type Modality,
  type Task,
} from '@sop/core';
import { argmax, softmax } from './metrics/util.js';
import { defaultFractions, insertionDeletionSummary } from './metrics/insertion-deletion.js';
import { isMapMetric, type MapMasks, type MapRun } from './metrics/purity.js';
import { sparsityCurve } from './metrics/sparsity-curve.js';

export interface EvaluateProgress {
  stage: 'backbone' | 'explain' | 'curves' | 'sweep' | 'maps' | 'metrics' | 'done';
  method: string;
  done: number;
  total: number;
}

export interface EvaluateOptions {
  explainers: FaithfulExplainer[];
  /** One backbone shared by every method. */
  backbone: Backbone;
  space: FeatureSpace;
  masker: Masker;
  inputs: Inputs;
  /** classification: class index per example [N]; regression: [N, C]. */
  labels: Float32Array;
  task: Task;
  modality: Modality;
  numOutputs: number;
  /** Ground-truth relevant features [N, d] (0/1), for iou/coverage. */
  groundTruth?: Float32Array;
  metrics: Metric[];
  /** Fraction of features kept (default 0.2, the reference's k). */
  keep?: number;
  /** Model evaluations per explanation for post-hoc methods (default 20). */
  budget?: number;
  /** Keep fractions of the sparsity sweep (default 0.1, 0.2, …, 1.0). */
  keeps?: number[];
  /** Insertion/deletion steps (default 10: f = 0.1, …, 1.0). */
  steps?: number;
  seed?: number;
  /**
   * How insertion/deletion curves are made. 'mask': rank features by attribution and mask the input through the
   * masker (post-hoc protocol). 'explain': call explain at keep = f (+1e-4), with `deletion: true` for deletion (the
   * reference's SOP protocol). 'auto' (default): 'explain' for faithfulByConstruction explainers, else 'mask'.
   */
  curveMode?: 'auto' | 'mask' | 'explain';
  /**
   * Class whose probability the curve tracks: 'original' = the backbone's prediction on the unmasked input (decision 6,
   * default, for every method) or 'current' = the argmax of each masked prediction (the reference's SOP quirk).
   */
  curveClass?: 'original' | 'current';
  /**
   * How the sparsity sweep is made for post-hoc methods. 'explain' (default): call explain at each keep (the
   * explainer's own -F conversion). 'mask': rank features once by the main attribution and run the backbone on the
   * top-⌊d·keep⌋ masked inputs (the plain -F rule; ≈ keeps.length× cheaper for sampling methods). Faithful-by-construction
   * explainers always use 'explain'.
   */
  sweepMode?: 'explain' | 'mask';
  /** Evaluate only the first `limit` examples (config `evaluate.limit`). */
  limit?: number;
  /** Rows per masker/backbone call when building curves (default 256). */
  maxRows?: number;
  /** Bootstrap resamples for ± std (default 4); 0 = exact means, no std. */
  resamples?: number;
  /** Bootstrap (and leakage-probe split) seed (default 42, the reference's). */
  bootstrapSeed?: number;
  /** Extra options per metric name, passed to its compute(). */
  metricOptions?: Record<string, Record<string, unknown>>;
  /** Add a plain "backbone" row (unmasked model; default true). */
  includeBackbone?: boolean;
  onProgress?: (event: EvaluateProgress) => void;
}

export interface MetricInfo {
  name: string;
  direction: MetricDirection;
  category: MetricCategory;
}

/** One table row: `method`, then `<metric>` and `<metric>_std` numbers. */
export interface EvaluationRow {
  method: string;
  [metric: string]: number | string;
}

export interface CurveSet {
  method: string;
  fractions: number[];
  /** Mean curve over examples. */
  insertion: number[];
  deletion: number[];
  /** What the curve measures: probability of the tracked class, or per-example MSE (regression). */
  kind: 'probability' | 'mse';
  mode: 'mask' | 'explain';
}

export interface SparsitySeries {
  method: string;
  keeps: number[];
  /** Error (classification) or MSE (regression) at each keep. */
  values: number[];
  kind: 'error' | 'mse';
}

export interface EvaluationResult {
  task: Task;
  modality: Modality;
  numOutputs: number;
  numExamples: number;
  numFeatures: number;
  keep: number;
  budget: number;
  seed: number;
  metrics: MetricInfo[];
  rows: EvaluationRow[];
  /** Full metric values (with details) per method and metric name. */
  values: Record<string, Record<string, MetricValue>>;
  runs: MethodRun[];
  curves: { insertionDeletion: CurveSet[]; sparsity: SparsitySeries[] };
  /** Metrics not computed for a method, and why. */
  skipped: Array<{ method: string; metric: string; reason: string }>;
  /** Explainer meta per method (evaluations etc.). */
  meta: Record<string, Record<string, unknown>>;
}

/** The reference's sweep: 0.1, 0.2, …, 1.0. */
export const DEFAULT_KEEPS: readonly number[] = defaultFractions(10);

function checkLen(what: string, got: number, want: number, fix: string): void {
  if (got !== want) throw new UserError(`${what} has ${got} values, expected ${want}`, fix);
}

/**
 * Evaluate explainers (SOP, -F post-hoc methods) with the chosen metrics on one evaluation set, sharing one backbone.
 * For each method it fills the MethodRun fields the metrics require, then computes a table row; a plain "backbone"
 * row scores the unmasked model on the prediction-only metrics.
 */
export async function evaluate(opts: EvaluateOptions): Promise<EvaluationResult> {
  const { backbone, space, masker, task, modality, numOutputs: c } = opts;
  let { inputs, labels } = opts;
  let groundTruth = opts.groundTruth;
  if (opts.limit !== undefined) {
    if (!(Number.isInteger(opts.limit) && opts.limit > 0)) throw new UserError(`limit must be a positive integer, got ${opts.limit}`, 'set evaluate.limit to e.g. 100, or remove it');
    const total = batchSize(inputs);
    if (opts.limit < total) {
      const k = opts.limit;
      inputs = Object.fromEntries(Object.entries(inputs).map(([key, t]) => [key, sliceRows(t, 0, k)])) as Inputs;
      labels = labels.subarray(0, task === 'classification' ? k : k * c);
      if (groundTruth) groundTruth = groundTruth.subarray(0, k * space.numFeatures);
    }
  }
  const keep = opts.keep ?? 0.2;
  const budget = opts.budget ?? 20;
  const seed = opts.seed ?? 0;
  const steps = opts.steps ?? 10;
  const keeps = opts.keeps ? [...opts.keeps] : [...DEFAULT_KEEPS];
  const resamples = opts.resamples ?? 4;
  const progress = opts.onProgress ?? (() => {});
  const n = batchSize(inputs);
  const d = space.numFeatures;
  if (!(keep > 0 && keep <= 1)) throw new UserError(`keep must be in (0, 1], got ${keep}`, 'set evaluate.keep to e.g. 0.2');
  if (!Number.isInteger(steps) || steps < 1) throw new UserError(`steps must be a positive integer, got ${steps}`, 'set steps to e.g. 10');
  for (const k of keeps) if (!(k > 0 && k <= 1)) throw new UserError(`sparsity keeps must lie in (0, 1], got ${k}`, 'use fractions such as 0.1, 0.2, …, 1.0');
  checkLen('labels', labels.length, task === 'classification' ? n : n * c, 'pass one class index per example (classification) or N×C values (regression)');
  if (groundTruth) checkLen('groundTruth', groundTruth.length, n * d, 'pass ground-truth feature masks [N, d]');
  if (opts.explainers.length === 0 && opts.includeBackbone === false) throw new UserError('nothing to evaluate: no explainers', 'name at least one method');
  const names = new Set<string>();
  for (const e of opts.explainers) {
    if (names.has(e.name)) throw new UserError(`method '${e.name}' is listed twice`, 'list each method once');
    names.add(e.name);
  }

  const skipped: EvaluationResult['skipped'] = [];
  const metrics = opts.metrics.filter((m) => {
    const ok = m.tasks.includes(task) && m.modalities.includes(modality);
    if (!ok) skipped.push({ method: '*', metric: m.name, reason: `does not apply to ${task} / ${modality}` });
    else if (m.requires.includes('groundTruth') && !groundTruth) {
      skipped.push({ method: '*', metric: m.name, reason: 'no ground-truth feature masks in the data' });
      return false;
    }
    return ok;
  });
  const needs = new Set<MetricRequirement>(metrics.flatMap((m) => m.requires));
  const wantMaps = metrics.some(isMapMetric);

  progress({ stage: 'backbone', method: 'backbone', done: 0, total: 1 });
  const fwd = await backbone.forward(inputs);
  const backboneOutputs = fwd.output.data;
  checkLen(`backbone '${backbone.name}' output`, backboneOutputs.length, n * c, `check numOutputs (${c}) against the backbone's output size`);
  progress({ stage: 'backbone', method: 'backbone', done: 1, total: 1 });
  const original = argmax(backboneOutputs, c);

  const base = (method: string): MethodRun => ({
    method,
    task,
    modality,
    numOutputs: c,
    numFeatures: d,
    labels,
    backboneOutputs,
    groundTruth: groundTruth,
  });
  const optionsFor = (m: Metric, faithful: boolean): Record<string, unknown> => ({
    resamples,
    seed: opts.bootstrapSeed ?? 42,
    faithfulByConstruction: faithful,
    ...(opts.metricOptions?.[m.name] ?? {}),
  });
  const has = (run: MethodRun, r: MetricRequirement): boolean => {
    switch (r) {
      case 'curves':
        return !!run.curves;
      default:
        return run[r as keyof MethodRun] !== undefined;
    }
  };

  const rows: EvaluationRow[] = [];
  const values: EvaluationResult['values'] = {};
  const runs: MethodRun[] = [];
  const meta: EvaluationResult['meta'] = {};
  const insertionDeletion: CurveSet[] = [];
  const sparsity: SparsitySeries[] = [];

  const score = (run: MethodRun, faithful: boolean, only?: (m: Metric) => boolean): void => {
    const row: EvaluationRow = { method: run.method };
    const vals: Record<string, MetricValue> = {};
    for (const m of metrics) {
      if (only && !only(m)) continue;
      const missing = m.requires.filter((r) => !has(run, r));
      if (missing.length > 0 || (isMapMetric(m) && !(run as MapRun).maps)) {
        skipped.push({ method: run.method, metric: m.name, reason: `method gives no ${missing.join(', ') || 'maps'}` });
        continue;
      }
      const v = m.compute(run, optionsFor(m, faithful));
      vals[m.name] = v;
      row[m.name] = v.value;
      if (v.std !== undefined) row[`${m.name}_std`] = v.std;
    }
    rows.push(row);
    values[run.method] = vals;
  };

  if (opts.includeBackbone !== false) {
    const run = { ...base('backbone'), predictions: backboneOutputs };
    score(run, true, (m) => m.requires.every((r) => r === 'predictions'));
    runs.push(run);
    meta.backbone = { method: 'backbone', evaluations: n };
  }

  const targetOpt: Pick<ExplainOptions, 'target'> = task === 'classification' ? { target: 'predicted' } : {};
  const total = opts.explainers.length;
  for (let e = 0; e < total; e++) {
    const ex = opts.explainers[e];
    const call = (o: Partial<ExplainOptions>): Promise<Explanation> =>
      ex.explain(inputs, { keep, budget, seed, labels, ...targetOpt, ...o });
    progress({ stage: 'explain', method: ex.name, done: e, total });
    const exp = await call({
      allClasses: needs.has('allClassAttributions'),
      onProgress: (done, tot) => progress({ stage: 'explain', method: ex.name, done, total: tot }),
    });
    checkLen(`method '${ex.name}' outputs`, exp.outputs.length, n * c, 'the explainer must return [N, C] outputs');
    checkLen(`method '${ex.name}' attributions`, exp.attributions.length, n * d, 'the explainer must return [N, d] attributions');
    checkLen(`method '${ex.name}' featureMasks`, exp.featureMasks.length, n * d, 'the explainer must return [N, d] feature masks');
    const run: MapRun = {
      ...base(ex.name),
      predictions: exp.outputs,
      attributions: exp.attributions,
      targets: exp.targets,
      featureMasks: exp.featureMasks,
    };
    if (exp.allClassAttributions) run.allClassAttributions = exp.allClassAttributions;
    if (exp.groups) run.groups = { masks: exp.groups.masks, weights: exp.groups.weights, count: exp.groups.count };
    meta[ex.name] = { ...exp.meta, faithfulByConstruction: ex.faithfulByConstruction };

    if (needs.has('curves')) {
      const mode = opts.curveMode === 'mask' || opts.curveMode === 'explain' ? opts.curveMode : ex.faithfulByConstruction ? 'explain' : 'mask';
      progress({ stage: 'curves', method: ex.name, done: 0, total: 1 });
      const curves =
        mode === 'explain'
          ? await curvesByExplain(call, steps, n, c, task, labels, original, opts.curveClass ?? 'original', (done, tot) =>
              progress({ stage: 'curves', method: ex.name, done, total: tot }),
            )
          : await curvesByMasking(exp.attributions, { backbone, space, masker, inputs }, steps, n, c, task, labels, original, opts.maxRows ?? 256, (done, tot) =>
              progress({ stage: 'curves', method: ex.name, done, total: tot }),
            );
      run.curves = curves;
      const ins = insertionDeletionSummary(curves.fractions, curves.insertion);
      const del = insertionDeletionSummary(curves.fractions, curves.deletion);
      insertionDeletion.push({
        method: ex.name,
        fractions: curves.fractions,
        insertion: ins.meanCurve,
        deletion: del.meanCurve,
        kind: task === 'classification' ? 'probability' : 'mse',
        mode,
      });
    }

    if (needs.has('keepSweep')) {
      const sweepMode = opts.sweepMode === 'mask' && !ex.faithfulByConstruction ? 'mask' : 'explain';
      let preds: Float32Array[] = [];
      if (sweepMode === 'mask') {
        const ctx = { backbone, space, masker, inputs };
        preds = await maskedOutputs(featureOrders(exp.attributions, ctx, n, true), keeps, ctx, c, opts.maxRows ?? 256, (done, tot) =>
          progress({ stage: 'sweep', method: ex.name, done, total: tot }),
        );
      } else {
        for (let i = 0; i < keeps.length; i++) {
          progress({ stage: 'sweep', method: ex.name, done: i, total: keeps.length });
          preds.push(keeps[i] === keep ? exp.outputs : (await call({ keep: keeps[i] })).outputs);
        }
      }
      run.keepSweep = { keeps, predictions: preds };
      const s = sparsityCurve(run.keepSweep, labels, task, c);
      sparsity.push({ method: ex.name, keeps: s.keeps, values: s.values, kind: task === 'classification' ? 'error' : 'mse' });
    }

    if (wantMaps) {
      progress({ stage: 'maps', method: ex.name, done: 0, total: 1 });
      run.maps = await buildMaps(call, exp, space, inputs, n, c, task);
    }

    progress({ stage: 'metrics', method: ex.name, done: e, total });
    score(run, ex.faithfulByConstruction);
    runs.push(run);
  }
  progress({ stage: 'done', method: '', done: total, total });

  return {
    task,
    modality,
    numOutputs: c,
    numExamples: n,
    numFeatures: d,
    keep,
    budget,
    seed,
    metrics: metrics.map((m) => ({ name: m.name, direction: m.direction, category: m.category })),
    rows,
    values,
    runs,
    curves: { insertionDeletion, sparsity },
    skipped,
    meta,
  };
}

/** Per-row curve value: probability of the tracked class, or (regression) the row's MSE against its label. */
function curveValue(out: ArrayLike<number>, r: number, i: number, c: number, task: Task, labels: Float32Array, cls: number, probs?: Float64Array): number {
  if (task === 'classification') return (probs as Float64Array)[r * c + cls];
  let s = 0;
  for (let j = 0; j < c; j++) {
    const diff = out[r * c + j] - labels[i * c + j];
    s += diff * diff;
  }
  return s / c;
}

/** Feature order per example for insertion (descending attribution) or deletion (ascending), valid features only. */
export function rankFeatures(scores: ArrayLike<number>, valid: ArrayLike<number> | undefined, i: number, d: number, descending: boolean): number[] {
  const idx: number[] = [];
  for (let j = 0; j < d; j++) if (!valid || valid[i * d + j] > 0.5) idx.push(j);
  const s = (j: number) => scores[i * d + j];
  idx.sort((a, b) => (descending ? s(b) - s(a) : s(a) - s(b)) || a - b);
  return idx;
}

/** Everything needed to run the backbone on masked copies of the evaluation inputs. */
export interface MaskingContext {
  backbone: Backbone;
  space: FeatureSpace;
  masker: Masker;
  inputs: Inputs;
}

/**
 * Backbone outputs on masked inputs: for each order (one per example), each fraction f keeps the first ⌊d_i·f⌋
 * features of the order (d_i = the example's valid features; padding features stay as they are) and masks the rest
 * through the masker. Runs in batches of `maxRows` rows. Returns [fractions.length] arrays of [N, C].
 */
export async function maskedOutputs(
  orders: number[][],
  fractions: number[],
  ctx: MaskingContext,
  numOutputs: number,
  maxRows = 256,
  onProgress?: (done: number, total: number) => void,
): Promise<Float32Array[]> {
  const n = orders.length;
  const d = ctx.space.numFeatures;
  const steps = fractions.length;
  const c = numOutputs;
  const valid = ctx.space.validFeatures?.(ctx.inputs);
  const outs = fractions.map(() => new Float32Array(n * c));
  const totalRows = n * steps;
  const chunk = Math.max(1, Math.floor(maxRows));
  for (let start = 0; start < totalRows; start += chunk) {
    const end = Math.min(totalRows, start + chunk);
    const masks = new Float32Array((end - start) * d);
    const rows = new Int32Array(end - start);
    for (let t = start; t < end; t++) {
      const i = Math.floor(t / steps);
      const s = t % steps;
      const r = t - start;
      rows[r] = i;
      if (valid) for (let j = 0; j < d; j++) masks[r * d + j] = valid[i * d + j] > 0.5 ? 0 : 1;
      const count = Math.floor(orders[i].length * fractions[s] + 1e-9);
      for (let q = 0; q < count; q++) masks[r * d + orders[i][q]] = 1;
    }
    const masked = ctx.masker.apply(ctx.inputs, masks, rows, ctx.space);
    const out = (await ctx.backbone.forward(masked)).output.data;
    checkLen('backbone output on masked inputs', out.length, (end - start) * c, 'the backbone must return [R, C] for R masked rows');
    for (let t = start; t < end; t++) {
      const i = Math.floor(t / steps);
      outs[t % steps].set(out.subarray((t - start) * c, (t - start + 1) * c), i * c);
    }
    onProgress?.(end, totalRows);
  }
  return outs;
}

/** Feature orders for every example: descending attribution (insertion, -F top-k) or ascending (deletion). */
export function featureOrders(attributions: Float32Array, ctx: Pick<MaskingContext, 'space' | 'inputs'>, n: number, descending: boolean): number[][] {
  const d = ctx.space.numFeatures;
  const valid = ctx.space.validFeatures?.(ctx.inputs);
  return Array.from({ length: n }, (_, i) => rankFeatures(attributions, valid, i, d, descending));
}

/**
 * Insertion/deletion curves for post-hoc methods: for f = 1/steps … 1, keep the first ⌊d_i·f⌋ features in attribution
 * order (descending for insertion, ascending for deletion), mask the rest through the masker, and read the
 * probability of the original class (regression: the row's MSE against its label).
 */
export async function curvesByMasking(
  attributions: Float32Array,
  ctx: MaskingContext,
  steps: number,
  n: number,
  c: number,
  task: Task,
  labels: Float32Array,
  original: Int32Array,
  maxRows = 256,
  onProgress?: (done: number, total: number) => void,
): Promise<{ fractions: number[]; insertion: Float32Array; deletion: Float32Array }> {
  const fractions = defaultFractions(steps);
  const curves = [new Float32Array(n * steps), new Float32Array(n * steps)];
  for (const which of [0, 1]) {
    const outs = await maskedOutputs(featureOrders(attributions, ctx, n, which === 0), fractions, ctx, c, maxRows, (done, tot) => onProgress?.(which * tot + done, 2 * tot));
    outs.forEach((out, s) => {
      const probs = task === 'classification' ? softmax(out, c) : undefined;
      for (let i = 0; i < n; i++) curves[which][i * steps + s] = curveValue(out, i, i, c, task, labels, original[i], probs);
    });
  }
  return { fractions, insertion: curves[0], deletion: curves[1] };
}

/**
 * Insertion/deletion curves for faithful-by-construction explainers (SOP): at each f call explain with
 * keep = min(1, f + 1e-4) (and `deletion: true` for deletion: groups from the bottom-k features) and read its own
 * prediction.
 */
export async function curvesByExplain(
  call: (o: Partial<ExplainOptions>) => Promise<Explanation>,
  steps: number,
  n: number,
  c: number,
  task: Task,
  labels: Float32Array,
  original: Int32Array,
  curveClass: 'original' | 'current',
  onProgress?: (done: number, total: number) => void,
): Promise<{ fractions: number[]; insertion: Float32Array; deletion: Float32Array }> {
  const fractions = defaultFractions(steps);
  const curves = [new Float32Array(n * steps), new Float32Array(n * steps)];
  for (let s = 0; s < steps; s++) {
    onProgress?.(2 * s, 2 * steps);
    for (const which of [0, 1]) {
      const exp = await call({ keep: Math.min(1, fractions[s] + 1e-4), deletion: which === 1 });
      checkLen('explain outputs', exp.outputs.length, n * c, 'the explainer must return [N, C] outputs');
      const probs = task === 'classification' ? softmax(exp.outputs, c) : undefined;
      const current = curveClass === 'current' ? argmax(exp.outputs, c) : original;
      for (let i = 0; i < n; i++) curves[which][i * steps + s] = curveValue(exp.outputs, i, i, c, task, labels, current[i], probs);
    }
  }
  return { fractions, insertion: curves[0], deletion: curves[1] };
}

/**
 * Input-level masks for map purity: regression explains each output c (target c) and expands its feature mask through
 * the feature space; classification uses the explained class's mask. Pixel values are the primary input's rows.
 */
async function buildMaps(
  call: (o: Partial<ExplainOptions>) => Promise<Explanation>,
  exp: Explanation,
  space: FeatureSpace,
  inputs: Inputs,
  n: number,
  c: number,
  task: Task,
): Promise<MapMasks> {
  if (!(inputs.x.data instanceof Float32Array)) throw new UserError('purity needs float maps as inputs.x', 'use purity only with map (image-like) data');
  const p = sizeOf(inputs.x.shape.slice(1));
  const outputs = task === 'regression' ? c : 1;
  const masks = new Float32Array(n * outputs * p);
  const rows = Int32Array.from({ length: n }, (_, i) => i);
  for (let k = 0; k < outputs; k++) {
    const fm = task === 'regression' ? (await call({ target: k })).featureMasks : exp.featureMasks;
    const expanded = space.expand(fm, rows, inputs).data;
    checkLen('expanded feature masks', expanded.length, n * p, 'the feature space must expand [N, d] masks to [N, ...x.shape.slice(1)]');
    for (let i = 0; i < n; i++) masks.set(expanded.subarray(i * p, (i + 1) * p), (i * outputs + k) * p);
  }
  return { values: inputs.x.data, pixels: p, masks, outputs };
}
