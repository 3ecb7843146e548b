import type { MethodRun, Metric, MetricValue } from '@sop/core';
import { checkLength, need, summarise } from './util.js';

/** Per-example mean squared error over the C outputs: predictions and targets are [N, C]. */
export function squaredErrors(predictions: ArrayLike<number>, targets: ArrayLike<number>, numOutputs: number): Float64Array {
  checkLength('targets', targets.length, predictions.length, 'mse');
  const n = Math.floor(predictions.length / numOutputs);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < numOutputs; j++) {
      const d = predictions[i * numOutputs + j] - targets[i * numOutputs + j];
      s += d * d;
    }
    out[i] = s / numOutputs;
  }
  return out;
}

/** Mean squared error over all N·C entries (torch's `mse_loss` mean reduction). */
export function mse(predictions: ArrayLike<number>, targets: ArrayLike<number>, numOutputs = 1): number {
  const e = squaredErrors(predictions, targets, numOutputs);
  let s = 0;
  for (const v of e) s += v;
  return e.length === 0 ? NaN : s / e.length;
}

/** MSE of the method's own prediction against the regression labels (Table 1's "CG MSE ↓"). */
export const mseMetric: Metric = {
  name: 'mse',
  direction: 'lower',
  category: 'accuracy',
  tasks: ['regression'],
  modalities: ['tabular', 'image', 'text', 'map'],
  requires: ['predictions'],
  compute(run: MethodRun, options?: Record<string, unknown>): MetricValue {
    const p = need(run, 'predictions', 'mse');
    return summarise(squaredErrors(p, run.labels, run.numOutputs), options);
  },
};
