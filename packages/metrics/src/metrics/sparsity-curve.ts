import { UserError, type MethodRun, type Metric, type MetricValue } from '@sop/core';
import { correctness } from './accuracy.js';
import { squaredErrors } from './mse.js';
import { need, summarise } from './util.js';

export interface SparsityCurve {
  keeps: number[];
  /** Error (classification) or MSE (regression) at each keep. */
  values: number[];
}

/** Per-example error (1 − correct) or MSE at one keep. */
function perExampleLoss(predictions: Float32Array, run: Pick<MethodRun, 'task' | 'labels' | 'numOutputs'>): Float64Array {
  return run.task === 'classification' ? correctness(predictions, run.labels, run.numOutputs).map((v) => 1 - v) : squaredErrors(predictions, run.labels, run.numOutputs);
}

/** Error (or MSE) vs keep fraction from a keep sweep (methods §4.5). */
export function sparsityCurve(
  keepSweep: { keeps: number[]; predictions: Float32Array[] },
  labels: Float32Array,
  task: MethodRun['task'],
  numOutputs: number,
): SparsityCurve {
  if (keepSweep.keeps.length !== keepSweep.predictions.length) {
    throw new UserError(`keep sweep has ${keepSweep.keeps.length} keeps but ${keepSweep.predictions.length} prediction sets`, 'pass one prediction set per keep');
  }
  const values = keepSweep.predictions.map((p) => {
    const l = perExampleLoss(p, { task, labels, numOutputs });
    return l.reduce((a, b) => a + b, 0) / l.length;
  });
  return { keeps: [...keepSweep.keeps], values };
}

/**
 * Sparsity curve (↓): the headline value is the mean error (MSE for regression) over the swept keeps — the area under
 * the error-vs-keep curve per unit keep; details.keeps / details.values hold the curve itself.
 */
export const sparsityCurveMetric: Metric = {
  name: 'sparsity-curve',
  direction: 'lower',
  category: 'complexity',
  tasks: ['classification', 'regression'],
  modalities: ['tabular', 'image', 'text', 'map'],
  requires: ['keepSweep'],
  compute(run: MethodRun, options?: Record<string, unknown>): MetricValue {
    const sweep = need(run, 'keepSweep', 'sparsity-curve');
    const losses = sweep.predictions.map((p) => perExampleLoss(p, run));
    const n = losses[0]?.length ?? 0;
    const perExample = new Float64Array(n);
    for (const l of losses) for (let i = 0; i < n; i++) perExample[i] += l[i] / losses.length;
    const curve = sparsityCurve(sweep, run.labels, run.task, run.numOutputs);
    return summarise(perExample, options, { keeps: curve.keeps, values: curve.values });
  },
};
