import { UserError, type Metric, type Modality, type Task } from '@sop/core';
import { accuracyMetric, errorMetric } from './accuracy.js';
import { mseMetric } from './mse.js';
import { fidelityMetric } from './fidelity.js';
import { deletionAucMetric, deletionMetric, deletionMseMetric, insertionAucMetric, insertionMetric, insertionMseMetric } from './insertion-deletion.js';
import { coverageMetric, iouMetric } from './iou.js';
import { purityMetric } from './purity.js';
import { sparsityCurveMetric } from './sparsity-curve.js';
import { groupLeakageMetric } from './group-leakage.js';

export { summarise, type MetricComputeOptions } from './util.js';
export * from './bootstrap.js';
export * from './accuracy.js';
export * from './mse.js';
export * from './fidelity.js';
export * from './insertion-deletion.js';
export * from './iou.js';
export * from './purity.js';
export * from './sparsity-curve.js';
export * from './group-leakage.js';

/** Every built-in metric, in the order reports show them. */
export const builtinMetrics: readonly Metric[] = [
  errorMetric,
  accuracyMetric,
  mseMetric,
  coverageMetric,
  iouMetric,
  purityMetric,
  fidelityMetric,
  insertionMetric,
  deletionMetric,
  insertionAucMetric,
  deletionAucMetric,
  insertionMseMetric,
  deletionMseMetric,
  sparsityCurveMetric,
  groupLeakageMetric,
];

/** Look up a built-in metric by name (undefined when unknown). */
export function builtinMetric(name: string): Metric | undefined {
  return builtinMetrics.find((m) => m.name === name);
}

/**
 * Resolve metric names (config `evaluate.metrics`) to built-in metrics, in the given order. An unknown name is a
 * UserError listing the known ones. `extra` metrics (user plugins) are searched first.
 */
export function resolveMetrics(names: string[], extra: readonly Metric[] = []): Metric[] {
  return names.map((name) => {
    const m = extra.find((e) => e.name === name) ?? builtinMetric(name);
    if (!m) {
      throw new UserError(`unknown metric '${name}'`, `use one of: ${[...extra, ...builtinMetrics].map((e) => e.name).join(', ')}`);
    }
    return m;
  });
}

/**
 * The default metric names for a task and modality (what `sop evaluate` uses when the config names none):
 * Table 1/2-style accuracy, localisation (when ground truth exists), faithfulness and complexity metrics.
 */
export function defaultMetricNames(task: Task, modality: Modality, options: { groundTruth?: boolean; groups?: boolean } = {}): string[] {
  if (task === 'regression') {
    return ['mse', ...(modality === 'map' ? ['purity'] : []), ...(options.groundTruth ? ['coverage', 'iou'] : []), 'insertion-mse', 'deletion-mse', 'sparsity-curve'];
  }
  return [
    'error',
    ...(options.groundTruth ? ['coverage', 'iou'] : []),
    'fidelity',
    'insertion',
    'deletion',
    'sparsity-curve',
    ...(options.groups === false ? [] : ['group-leakage']),
  ];
}
