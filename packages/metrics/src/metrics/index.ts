import type { Metric } from '@sop/core';
import { accuracyMetric, errorMetric } from './accuracy.js';
import { mseMetric } from './mse.js';
import { fidelityMetric } from './fidelity.js';
import { deletionAucMetric, deletionMetric, deletionMseMetric, insertionAucMetric, insertionMetric, insertionMseMetric } from './insertion-deletion.js';
import { coverageMetric, iouMetric } from './iou.js';
import { purityMetric } from './purity.js';
import { sparsityCurveMetric } from './sparsity-curve.js';
import { groupLeakageMetric } from './group-leakage.js';

export * from './util.js';
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
