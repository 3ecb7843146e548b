import type { MethodRun, Metric, MetricValue } from '@sop/core';
import { checkLength, need, summarise } from './util.js';

/** The reference's ε in (|M∩S| + ε) / (|S| + ε). */
export const COVERAGE_EPS = 1e-20;

function counts(mask: ArrayLike<number>, truth: ArrayLike<number>, i: number, d: number): { inter: number; union: number; truth: number; mask: number } {
  let inter = 0;
  let union = 0;
  let t = 0;
  let m = 0;
  for (let j = 0; j < d; j++) {
    const a = mask[i * d + j] > 0.5;
    const b = truth[i * d + j] > 0.5;
    if (a && b) inter++;
    if (a || b) union++;
    if (b) t++;
    if (a) m++;
  }
  return { inter, union, truth: t, mask: m };
}

/** Per-example true IoU |M∩S| / |M∪S| of 0/1 masks [N, d] (values > 0.5 count as 1). An empty union gives 1. */
export function iouPerExample(masks: ArrayLike<number>, truth: ArrayLike<number>, numFeatures: number): Float64Array {
  checkLength('groundTruth', truth.length, masks.length, 'iou');
  const n = Math.floor(masks.length / numFeatures);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const c = counts(masks, truth, i, numFeatures);
    out[i] = c.union === 0 ? 1 : c.inter / c.union;
  }
  return out;
}

/** Mean true IoU over examples. */
export function iou(masks: ArrayLike<number>, truth: ArrayLike<number>, numFeatures: number): number {
  const v = iouPerExample(masks, truth, numFeatures);
  return v.reduce((a, b) => a + b, 0) / v.length;
}

/**
 * Per-example coverage (recall of the ground truth) (|M∩S| + ε) / (|S| + ε), ε = 1e-20: the reference's "IOU" column
 * (methods §4.2). An empty S gives 1.
 */
export function coveragePerExample(masks: ArrayLike<number>, truth: ArrayLike<number>, numFeatures: number): Float64Array {
  checkLength('groundTruth', truth.length, masks.length, 'coverage');
  const n = Math.floor(masks.length / numFeatures);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const c = counts(masks, truth, i, numFeatures);
    out[i] = (c.inter + COVERAGE_EPS) / (c.truth + COVERAGE_EPS);
  }
  return out;
}

/** Mean coverage over examples. */
export function coverage(masks: ArrayLike<number>, truth: ArrayLike<number>, numFeatures: number): number {
  const v = coveragePerExample(masks, truth, numFeatures);
  return v.reduce((a, b) => a + b, 0) / v.length;
}

/** True IoU of the method's selected features (at keep) with the ground-truth features. */
export const iouMetric: Metric = {
  name: 'iou',
  direction: 'higher',
  category: 'localisation',
  tasks: ['classification', 'regression'],
  modalities: ['tabular', 'image', 'text', 'map'],
  requires: ['featureMasks', 'groundTruth'],
  compute(run: MethodRun, options?: Record<string, unknown>): MetricValue {
    return summarise(iouPerExample(need(run, 'featureMasks', 'iou'), need(run, 'groundTruth', 'iou'), run.numFeatures), options);
  },
};

/** Coverage |M∩S|/|S| of the ground truth by the selected features: the reference's "IOU" column. */
export const coverageMetric: Metric = {
  name: 'coverage',
  direction: 'higher',
  category: 'localisation',
  tasks: ['classification', 'regression'],
  modalities: ['tabular', 'image', 'text', 'map'],
  requires: ['featureMasks', 'groundTruth'],
  compute(run: MethodRun, options?: Record<string, unknown>): MetricValue {
    return summarise(coveragePerExample(need(run, 'featureMasks', 'coverage'), need(run, 'groundTruth', 'coverage'), run.numFeatures), options);
  },
};
