import { UserError, type MethodRun, type MetricRequirement, type MetricValue } from '@sop/core';
import { bootstrap } from './bootstrap.js';

/** Row-wise softmax of a flat [N, C] array (float64 math). */
export function softmax(logits: ArrayLike<number>, numOutputs: number): Float64Array {
  const n = Math.floor(logits.length / numOutputs);
  const out = new Float64Array(n * numOutputs);
  for (let i = 0; i < n; i++) {
    let mx = -Infinity;
    for (let j = 0; j < numOutputs; j++) mx = Math.max(mx, logits[i * numOutputs + j]);
    let s = 0;
    for (let j = 0; j < numOutputs; j++) s += out[i * numOutputs + j] = Math.exp(logits[i * numOutputs + j] - mx);
    for (let j = 0; j < numOutputs; j++) out[i * numOutputs + j] /= s;
  }
  return out;
}

/** Row-wise log-softmax of a flat [N, C] array (float64 math, stable). */
export function logSoftmax(logits: ArrayLike<number>, numOutputs: number): Float64Array {
  const n = Math.floor(logits.length / numOutputs);
  const out = new Float64Array(n * numOutputs);
  for (let i = 0; i < n; i++) {
    let mx = -Infinity;
    for (let j = 0; j < numOutputs; j++) mx = Math.max(mx, logits[i * numOutputs + j]);
    let s = 0;
    for (let j = 0; j < numOutputs; j++) s += Math.exp(logits[i * numOutputs + j] - mx);
    const lse = mx + Math.log(s);
    for (let j = 0; j < numOutputs; j++) out[i * numOutputs + j] = logits[i * numOutputs + j] - lse;
  }
  return out;
}

/** Row-wise argmax of a flat [N, C] array (first maximum wins). */
export function argmax(values: ArrayLike<number>, numOutputs: number): Int32Array {
  const n = Math.floor(values.length / numOutputs);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < numOutputs; j++) if (values[i * numOutputs + j] > values[i * numOutputs + best]) best = j;
    out[i] = best;
  }
  return out;
}

export function mean(values: ArrayLike<number>): number {
  if (values.length === 0) return NaN;
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i];
  return s / values.length;
}

/** Throws a UserError when `run` lacks a field the metric needs. */
export function need<K extends keyof MethodRun>(run: MethodRun, key: K, metric: string): NonNullable<MethodRun[K]> {
  const v = run[key];
  if (v === undefined || v === null) {
    throw new UserError(
      `metric '${metric}' needs '${String(key)}' from method '${run.method}', which the run does not have`,
      `let the evaluation runner fill it (it does so from the metric's 'requires'), or drop the metric`,
    );
  }
  return v as NonNullable<MethodRun[K]>;
}

export function checkLength(what: string, got: number, expected: number, metric: string): void {
  if (got !== expected) {
    throw new UserError(`metric '${metric}': ${what} has ${got} values, expected ${expected}`, 'check the shapes of the run (N examples × C outputs / d features)');
  }
}

/** Options every metric's compute() understands. */
export interface MetricComputeOptions {
  /** Bootstrap resamples for the std (default 4, the reference's); 0 = report the exact mean and no std. */
  resamples?: number;
  /** Bootstrap seed (default 42, the reference's). */
  seed?: number;
  [key: string]: unknown;
}

/**
 * Summarise per-example values as a MetricValue: with resamples > 0 the value is the mean of the bootstrap resample
 * means and std their std (as the reference reports); details.exactMean is the plain mean.
 */
export function summarise(perExample: ArrayLike<number>, options: Record<string, unknown> | undefined, details: Record<string, unknown> = {}): MetricValue {
  const o = (options ?? {}) as MetricComputeOptions;
  const resamples = o.resamples ?? 4;
  const exact = mean(perExample);
  if (resamples <= 0 || perExample.length === 0) return { value: exact, details: { exactMean: exact, n: perExample.length, ...details } };
  const b = bootstrap(perExample, { resamples, seed: o.seed ?? 42 });
  return { value: b.mean, std: b.std, details: { exactMean: exact, n: perExample.length, ...details } };
}

export type { MetricRequirement };
