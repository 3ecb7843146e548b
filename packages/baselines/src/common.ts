/** Shared option handling for attributors: targets, budget, seed, the baseline masker, aggregation. */
import {
  MASKERS,
  Rng,
  UserError,
  argmaxRows,
  type AttributeOptions,
  type Attribution,
  type AttributionContext,
  type FloatTensor,
  type Inputs,
  type Masker,
  type Target,
} from '@sop/core';
import type { BatchRunner, ScoreMode } from './batching.js';

/** SOP's budget: model evaluations (samples, steps) per explanation. */
export const DEFAULT_BUDGET = 20;

export function budgetOf(options: AttributeOptions, fallback = DEFAULT_BUDGET): number {
  const b = options.budget ?? fallback;
  if (typeof b !== 'number' || !Number.isInteger(b) || b < 1) {
    throw new UserError(`budget must be a positive integer, got ${JSON.stringify(b)}`, 'set budget to the number of model evaluations per explanation, e.g. 20');
  }
  return b;
}

/** The method's Rng: from `seed` when given, else a fork of context.rng, else seed 0. Deterministic either way. */
export function rngOf(context: AttributionContext, options: AttributeOptions): Rng {
  if (typeof options.seed === 'number') return new Rng(options.seed);
  return context.rng ? context.rng.fork() : new Rng(0);
}

const DESIGNS = new Map<string, { key: string; value: unknown }>();

/**
 * A method's random design (coalitions, masks and whatever is derived from them alone) for this call. With a numeric
 * `seed` the design is a function of the seed and of `key` (the sizes and options it depends on), so it is built once
 * and reused while consecutive calls ask for the same one (the batches of one run all pass the run's seed); one entry
 * per method. Without a seed it is built from a fork of context.rng (or seed 0) as {@link rngOf} does. `build` gets
 * the method's Rng and must not keep it; the returned value is shared between calls and must not be mutated.
 */
export function seededDesign<T>(method: string, context: AttributionContext, options: AttributeOptions, key: string, build: (rng: Rng) => T): T {
  if (typeof options.seed !== 'number') return build(rngOf(context, options));
  const full = `${options.seed}|${key}`;
  const hit = DESIGNS.get(method);
  if (hit && hit.key === full) return hit.value as T;
  const value = build(new Rng(options.seed));
  DESIGNS.set(method, { key: full, value });
  return value;
}

export function numberOption(options: AttributeOptions, key: string, fallback: number, check?: (v: number) => boolean, hint = 'a number'): number {
  const v = options[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || (check && !check(v))) {
    throw new UserError(`option ${key} must be ${hint}, got ${JSON.stringify(v)}`, `set ${key} to ${hint} or leave it unset (default ${fallback})`);
  }
  return v;
}

export function choiceOption<T extends string>(options: AttributeOptions, key: string, choices: readonly T[], fallback: T): T {
  const v = options[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) {
    throw new UserError(`option ${key} must be one of ${choices.join(', ')}, got ${JSON.stringify(v)}`, `set ${key} to one of: ${choices.join(', ')}`);
  }
  return v as T;
}

/** 'logit' (raw output) or 'prob' (softmax probability of the target; raw when C = 1), option `output`. */
export function scoreModeOf(options: AttributeOptions, fallback: ScoreMode): ScoreMode {
  return choiceOption(options, 'output', ['logit', 'prob'] as const, fallback);
}

/**
 * Resolve the class explained per example. 'predicted' needs the outputs on the unmasked inputs [B, C]; 'label'
 * needs `labels`; a number or a per-example array is validated against C.
 */
export function resolveTargets(target: Target | undefined, labels: Float32Array | undefined, outputs: FloatTensor | null, batch: number, C: number): Int32Array {
  const t = target ?? 'predicted';
  const out = new Int32Array(batch);
  const check = (v: number, where: string): number => {
    if (!Number.isInteger(v) || v < 0 || v >= C) {
      throw new UserError(`target ${where} is ${v}, outside the backbone's ${C} outputs`, `use a class index in 0..${C - 1}, 'predicted' or 'label'`);
    }
    return v;
  };
  if (t === 'predicted') {
    if (!outputs) throw new Error('resolveTargets: predicted needs outputs');
    return C === 1 ? out : argmaxRows(outputs);
  }
  if (t === 'label') {
    if (!labels || labels.length < batch) {
      throw new UserError("target 'label' needs the examples' labels", "pass labels (one class id per example) or use target: 'predicted'");
    }
    for (let b = 0; b < batch; b++) out[b] = check(labels[b], `label of example ${b}`);
    return out;
  }
  if (typeof t === 'number') {
    out.fill(check(t, ''));
    return out;
  }
  if (Array.isArray(t)) {
    if (t.length !== batch) throw new UserError(`target has ${t.length} entries for ${batch} examples`, 'give one target class per example');
    for (let b = 0; b < batch; b++) out[b] = check(t[b], `of example ${b}`);
    return out;
  }
  throw new UserError(`unknown target ${JSON.stringify(t)}`, "use 'predicted', 'label', a class index or one index per example");
}

/** Whether targets need the unmasked outputs first. */
export function needsPrediction(options: AttributeOptions): boolean {
  return (options.target ?? 'predicted') === 'predicted';
}

const MASKER_NAMES: Record<string, string[]> = { zeros: ['zero', 'zeros'], mean: ['mean'], blur: ['blur'] };

/**
 * The masker defining "removed" for this call. Attributors never re-implement removal: the baseline is whatever the
 * masker puts in place of a removed feature. `baselineMasker` (a Masker) wins; with no `baseline` option the
 * context's masker is used; a `baseline` matching the context's masker (zeros ↔ zero, mean, blur) uses it too; a
 * different `baseline` builds core's masker of that kind (`MASKERS`), `mean` with `context.reference` (the training
 * split) as its statistics — without a reference, mean is a UserError.
 */
export function baselineMasker(context: AttributionContext, options: AttributeOptions): Masker {
  const explicit = options.baselineMasker as Masker | undefined;
  if (explicit) {
    if (typeof explicit.apply !== 'function') throw new UserError('baselineMasker must be a Masker', 'pass an object with apply(inputs, masks, rows, space)');
    return explicit;
  }
  const b = options.baseline;
  if (b === undefined) return context.masker;
  const names = MASKER_NAMES[b as string];
  if (!names) throw new UserError(`unknown baseline '${String(b)}'`, 'use zeros, mean or blur');
  if (names.includes(context.masker.name)) return context.masker;
  if (b === 'mean' && !context.reference) {
    throw new UserError("baseline 'mean' needs reference data (the training split) in the attribution context", "pass context.reference, set the features' masker to mean, or use baseline: zeros");
  }
  const factory = MASKERS[names[0]];
  if (!factory) throw new UserError(`baseline '${String(b)}': no '${names[0]}' masker is registered`, 'use a baseline that matches the masker');
  return factory.create({ use: names[0], ...(context.reference ? { reference: context.reference } : {}) });
}

/** Sum input-level attributions into features with the feature space. */
export function aggregate(context: AttributionContext, attr: Float32Array, inputs: Inputs): Float32Array {
  const r = context.space.aggregate({ data: attr, shape: [...inputs.x.shape] }, inputs);
  return r.data;
}

/** Rows 0..B−1 (one per example). */
export function identityRows(batch: number): Int32Array {
  const rows = new Int32Array(batch);
  for (let i = 0; i < batch; i++) rows[i] = i;
  return rows;
}

/** Assemble an Attribution from a runner's counts. */
export function finish(
  method: string,
  values: Float32Array,
  d: number,
  targets: Int32Array,
  runner: BatchRunner,
  options: AttributeOptions,
  extra: Record<string, unknown> = {},
  groups?: Attribution['groups'],
): Attribution {
  const B = targets.length;
  options.onProgress?.(B, B);
  const a: Attribution = {
    values,
    numFeatures: d,
    targets,
    meta: { method, evaluations: runner.evaluations, gradients: runner.gradients, calls: runner.calls, modelMs: runner.modelMs, modelCpuMs: runner.modelCpuMs, maxBatch: runner.maxBatch, ...extra },
  };
  if (groups) a.groups = groups;
  return a;
}

/** Per-element [min, max] of the data's observed range: context.reference when given, else the batch itself. */
export function dataRange(context: AttributionContext, inputs: Inputs): [number, number] {
  const src = context.reference && context.reference.x.data instanceof Float32Array ? context.reference.x.data : (inputs.x.data as Float32Array);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const xs = inputs.x.data as Float32Array;
  for (let i = 0; i < xs.length; i++) {
    if (xs[i] < lo) lo = xs[i];
    if (xs[i] > hi) hi = xs[i];
  }
  if (!(hi > lo)) hi = lo + 1;
  return [lo, hi];
}

/** Baseline inputs x₀ through the masker: every feature removed. */
export function baselineInputs(context: AttributionContext, masker: Masker, inputs: Inputs): Inputs {
  const B = inputs.x.shape[0];
  return masker.apply(inputs, new Float32Array(B * context.space.numFeatures), identityRows(B), context.space);
}
