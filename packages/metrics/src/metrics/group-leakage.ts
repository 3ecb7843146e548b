import { Rng, UserError, type MethodRun, type Metric, type MetricValue } from '@sop/core';
import { bootstrap } from './bootstrap.js';
import { need } from './util.js';

export interface LogisticOptions {
  /** Full-batch gradient-descent steps (default 300). */
  epochs?: number;
  /** Learning rate (default 0.5). */
  lr?: number;
  /** L2 penalty on the weights, not the bias (default 1e-3). */
  l2?: number;
}

/** A multinomial logistic-regression model: W [C, p] row-major and bias [C]. */
export interface LogisticModel {
  weights: Float64Array;
  bias: Float64Array;
  numFeatures: number;
  numClasses: number;
}

/** Row-wise sparse view of a dense [n, p] matrix: the non-zero column indices and values of each row. */
function sparseRows(x: ArrayLike<number>, n: number, p: number): { idx: Int32Array[]; val: Float64Array[]; nnz: number } {
  const idx: Int32Array[] = [];
  const val: Float64Array[] = [];
  let nnz = 0;
  for (let i = 0; i < n; i++) {
    const cols: number[] = [];
    for (let j = 0; j < p; j++) if (x[i * p + j] !== 0) cols.push(j);
    idx.push(Int32Array.from(cols));
    val.push(Float64Array.from(cols, (j) => x[i * p + j]));
    nnz += cols.length;
  }
  return { idx, val, nnz };
}

/**
 * Train softmax regression on x [n, p] (row-major) with class indices y [n], by plain full-batch gradient descent on
 * the mean cross-entropy + (l2/2)·‖W‖². Weights start at 0, so the result is deterministic. Rows are handled
 * sparsely (mask features are mostly 0).
 */
export function trainLogisticRegression(x: ArrayLike<number>, y: ArrayLike<number>, numFeatures: number, numClasses: number, options: LogisticOptions = {}): LogisticModel {
  const epochs = options.epochs ?? 300;
  const lr = options.lr ?? 0.5;
  const l2 = options.l2 ?? 1e-3;
  const n = y.length;
  const p = numFeatures;
  const c = numClasses;
  const { idx, val } = sparseRows(x, n, p);
  const w = new Float64Array(c * p);
  const b = new Float64Array(c);
  const gw = new Float64Array(c * p);
  const gb = new Float64Array(c);
  const z = new Float64Array(c);
  for (let e = 0; e < epochs; e++) {
    gw.fill(0);
    gb.fill(0);
    for (let i = 0; i < n; i++) {
      const ji = idx[i];
      const vi = val[i];
      const nz = ji.length;
      let mx = -Infinity;
      for (let k = 0; k < c; k++) {
        let s = b[k];
        const off = k * p;
        for (let q = 0; q < nz; q++) s += w[off + ji[q]] * vi[q];
        z[k] = s;
        if (s > mx) mx = s;
      }
      let sum = 0;
      for (let k = 0; k < c; k++) sum += z[k] = Math.exp(z[k] - mx);
      const yi = Math.round(y[i]);
      for (let k = 0; k < c; k++) {
        const g = z[k] / sum - (k === yi ? 1 : 0);
        if (g === 0) continue;
        gb[k] += g;
        const off = k * p;
        for (let q = 0; q < nz; q++) gw[off + ji[q]] += g * vi[q];
      }
    }
    for (let k = 0; k < c; k++) b[k] -= (lr * gb[k]) / n;
    for (let q = 0; q < c * p; q++) w[q] -= lr * (gw[q] / n + l2 * w[q]);
  }
  return { weights: w, bias: b, numFeatures: p, numClasses: c };
}

/** Predicted class per row of x [n, p]. */
export function predictLogistic(model: LogisticModel, x: ArrayLike<number>): Int32Array {
  const { numFeatures: p, numClasses: c } = model;
  const n = Math.floor(x.length / p);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestZ = -Infinity;
    for (let k = 0; k < c; k++) {
      let s = model.bias[k];
      for (let j = 0; j < p; j++) s += model.weights[k * p + j] * x[i * p + j];
      if (s > bestZ) {
        bestZ = s;
        best = k;
      }
    }
    out[i] = best;
  }
  return out;
}

export interface GroupLeakageOptions extends LogisticOptions {
  seed?: number;
  /**
   * Probe features: 'flat' = every group's mask concatenated [m·d] (keeps which query made which group),
   * 'union' = the mean of the group masks [d]. Default 'flat' when it fits the work budget, else 'union'.
   */
  features?: 'flat' | 'union';
  /**
   * Multiply-adds allowed for training (default 1e8, about two seconds): decides the default feature mode and caps the
   * epochs (at least 3) when the cost per epoch, ((N/2)·2·non-zeros per row + p)·C, times the epochs would exceed it.
   */
  workBudget?: number;
}

export interface GroupLeakageResult {
  /** probeAccuracy − chance (↓; 0 = the masks alone say nothing about the label). */
  leakage: number;
  probeAccuracy: number;
  /** Accuracy of always predicting the training half's majority class on the test half. */
  chance: number;
  trainAccuracy: number;
  features: 'flat' | 'union';
  /** Per-test-example correctness of the probe. */
  correct: Float64Array;
}

/**
 * Label leakage through the group masks: train a logistic-regression probe to predict the label from the masks alone
 * (no input values, no weights) on a seeded random half of the examples, test it on the other half, and compare with
 * chance. masks [N, m, d] row-major.
 */
export function groupLeakage(masks: ArrayLike<number>, count: number, numFeatures: number, labels: ArrayLike<number>, numClasses: number, options: GroupLeakageOptions = {}): GroupLeakageResult {
  const n = labels.length;
  const m = count;
  const d = numFeatures;
  if (masks.length !== n * m * d) throw new UserError(`group-leakage: masks have ${masks.length} values, expected ${n}×${m}×${d}`, 'pass group masks [N, m, d]');
  if (n < 4) throw new UserError(`group-leakage needs at least 4 examples, got ${n}`, 'evaluate on more examples');
  const budget = options.workBudget ?? 1e8;
  const wanted = options.epochs ?? 300;
  let nnz = 0;
  for (let q = 0; q < masks.length; q++) if (masks[q] !== 0) nnz++;
  // cost per epoch ≈ (training rows)·(non-zeros per row)·C·2 + C·p (the dense weight update)
  const cost = (p: number, nzRow: number) => ((n / 2) * nzRow * 2 + p) * numClasses;
  const mode = options.features ?? (cost(m * d, nnz / n) * wanted <= budget ? 'flat' : 'union');
  const p = mode === 'flat' ? m * d : d;
  const epochs = Math.max(3, Math.min(wanted, Math.floor(budget / Math.max(1, cost(p, mode === 'flat' ? nnz / n : Math.min(d, nnz / n))))));
  const x = new Float64Array(n * p);
  for (let i = 0; i < n; i++) {
    if (mode === 'flat') for (let j = 0; j < m * d; j++) x[i * p + j] = masks[i * m * d + j];
    else for (let g = 0; g < m; g++) for (let j = 0; j < d; j++) x[i * p + j] += masks[(i * m + g) * d + j] / m;
  }
  const perm = new Rng(options.seed ?? 0).permutation(n);
  const nTrain = Math.floor(n / 2);
  const take = (idx: ArrayLike<number>) => {
    const xs = new Float64Array(idx.length * p);
    const ys = new Float64Array(idx.length);
    for (let r = 0; r < idx.length; r++) {
      xs.set(x.subarray(idx[r] * p, (idx[r] + 1) * p), r * p);
      ys[r] = labels[idx[r]];
    }
    return { xs, ys };
  };
  const train = take(perm.subarray(0, nTrain));
  const test = take(perm.subarray(nTrain));
  const model = trainLogisticRegression(train.xs, train.ys, p, numClasses, { ...options, epochs });
  const acc = (xs: Float64Array, ys: Float64Array) => {
    const pred = predictLogistic(model, xs);
    return Float64Array.from(pred, (v, i) => (v === Math.round(ys[i]) ? 1 : 0));
  };
  const correct = acc(test.xs, test.ys);
  const trainCorrect = acc(train.xs, train.ys);
  const freq = new Float64Array(numClasses);
  for (const y of train.ys) freq[Math.round(y)]++;
  let majority = 0;
  for (let k = 1; k < numClasses; k++) if (freq[k] > freq[majority]) majority = k;
  const chance = test.ys.reduce((a, y) => a + (Math.round(y) === majority ? 1 : 0), 0) / test.ys.length;
  const probeAccuracy = correct.reduce((a, b) => a + b, 0) / correct.length;
  return {
    leakage: probeAccuracy - chance,
    probeAccuracy,
    chance,
    trainAccuracy: trainCorrect.reduce((a, b) => a + b, 0) / trainCorrect.length,
    features: mode,
    correct,
  };
}

/**
 * Group leakage (↓): how much better than chance a logistic probe predicts the label from the group masks alone.
 * Options: seed, epochs, lr, l2, features ('flat' | 'union'), resamples (bootstrap of the probe's test accuracy).
 */
export const groupLeakageMetric: Metric = {
  name: 'group-leakage',
  direction: 'lower',
  category: 'leakage',
  tasks: ['classification'],
  modalities: ['tabular', 'image', 'text', 'map'],
  requires: ['groups'],
  compute(run: MethodRun, options?: Record<string, unknown>): MetricValue {
    const g = need(run, 'groups', 'group-leakage');
    const o = (options ?? {}) as GroupLeakageOptions & { resamples?: number };
    const r = groupLeakage(g.masks, g.count, run.numFeatures, run.labels, run.numOutputs, o);
    const details = { probeAccuracy: r.probeAccuracy, chance: r.chance, trainAccuracy: r.trainAccuracy, features: r.features };
    const resamples = o.resamples ?? 4;
    if (resamples <= 0) return { value: r.leakage, details };
    const b = bootstrap(r.correct, { resamples, seed: (o.seed as number | undefined) ?? 42 });
    return { value: r.leakage, std: b.std, details };
  },
};
