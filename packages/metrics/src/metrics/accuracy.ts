import type { MethodRun, Metric, MetricValue } from '@sop/core';
import { argmax, checkLength, need, summarise } from './util.js';

/** Per-example correctness (1 = argmax of `predictions` [N, C] equals the class index in `labels` [N]). */
export function correctness(predictions: ArrayLike<number>, labels: ArrayLike<number>, numOutputs: number): Float64Array {
  const pred = argmax(predictions, numOutputs);
  if (pred.length !== labels.length) checkLength('labels', labels.length, pred.length, 'accuracy');
  const out = new Float64Array(pred.length);
  for (let i = 0; i < pred.length; i++) out[i] = pred[i] === Math.round(labels[i]) ? 1 : 0;
  return out;
}

/** Classification accuracy of logits/probabilities [N, C] against class indices [N]. */
export function accuracy(predictions: ArrayLike<number>, labels: ArrayLike<number>, numOutputs: number): number {
  const c = correctness(predictions, labels, numOutputs);
  let s = 0;
  for (const v of c) s += v;
  return c.length === 0 ? NaN : s / c.length;
}

/** Classification error = 1 − accuracy (the reference's "Err" column). */
export function error(predictions: ArrayLike<number>, labels: ArrayLike<number>, numOutputs: number): number {
  return 1 - accuracy(predictions, labels, numOutputs);
}

/** Accuracy of the method's own prediction (SOP's output; -F: backbone on the kept features). */
export const accuracyMetric: Metric = {
  name: 'accuracy',
  direction: 'higher',
  category: 'accuracy',
  tasks: ['classification'],
  modalities: ['tabular', 'image', 'text', 'map'],
  requires: ['predictions'],
  compute(run: MethodRun, options?: Record<string, unknown>): MetricValue {
    const p = need(run, 'predictions', 'accuracy');
    return summarise(correctness(p, run.labels, run.numOutputs), options);
  },
};

/** Error = 1 − accuracy (Table 1's "Err ↓"). */
export const errorMetric: Metric = {
  name: 'error',
  direction: 'lower',
  category: 'accuracy',
  tasks: ['classification'],
  modalities: ['tabular', 'image', 'text', 'map'],
  requires: ['predictions'],
  compute(run: MethodRun, options?: Record<string, unknown>): MetricValue {
    const p = need(run, 'predictions', 'error');
    const c = correctness(p, run.labels, run.numOutputs);
    return summarise(c.map((v) => 1 - v), options);
  },
};
