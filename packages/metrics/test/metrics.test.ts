import { describe, expect, it } from 'vitest';
import { Rng, type MethodRun } from '@sop/core';
import {
  accuracy,
  accuracyMetric,
  bootstrap,
  correctness,
  coverage,
  coverageMetric,
  curveScores,
  deletionMetric,
  deletionMseMetric,
  error,
  errorMetric,
  fidelity,
  fidelityMetric,
  groupLeakage,
  groupLeakageMetric,
  insertionAucMetric,
  insertionMetric,
  iou,
  iouMetric,
  maskFractions,
  mse,
  mseMetric,
  predictLogistic,
  purity,
  purityMetric,
  referenceScore,
  sparsityCurve,
  sparsityCurveMetric,
  trainLogisticRegression,
  trapezoidAuc,
  type MapRun,
} from '../src/index.js';

const exact = { resamples: 0 };

function run(extra: Partial<MethodRun> & Pick<MethodRun, 'labels' | 'numOutputs' | 'numFeatures'>): MethodRun {
  return { method: 'm', task: 'classification', modality: 'tabular', backboneOutputs: new Float32Array(0), ...extra };
}

describe('accuracy / error', () => {
  const preds = Float32Array.from([2, 1, 0, 3, 5, 4]);
  const labels = Float32Array.from([0, 1, 1]);
  it('counts argmax hits', () => {
    expect(Array.from(correctness(preds, labels, 2))).toEqual([1, 1, 0]);
    expect(accuracy(preds, labels, 2)).toBeCloseTo(2 / 3, 12);
    expect(error(preds, labels, 2)).toBeCloseTo(1 / 3, 12);
  });
  it('metrics declare themselves and compute', () => {
    const r = run({ labels, numOutputs: 2, numFeatures: 1, predictions: preds });
    expect(accuracyMetric.compute(r, exact).value).toBeCloseTo(2 / 3, 6);
    expect(errorMetric.compute(r, exact).value).toBeCloseTo(1 / 3, 6);
    expect(errorMetric.direction).toBe('lower');
    expect(accuracyMetric.direction).toBe('higher');
    expect(errorMetric.requires).toEqual(['predictions']);
    expect(() => errorMetric.compute(run({ labels, numOutputs: 2, numFeatures: 1 }))).toThrow(/needs 'predictions'/);
  });
  it('reports a bootstrap std by default', () => {
    const r = run({ labels, numOutputs: 2, numFeatures: 1, predictions: preds });
    const v = errorMetric.compute(r);
    expect(v.std).toBeGreaterThanOrEqual(0);
    expect(v.details?.exactMean).toBeCloseTo(1 / 3, 6);
  });
});

describe('mse', () => {
  it('averages over entries', () => {
    // per example: ((1)^2 + 0)/2 = 0.5 and (0 + 2^2)/2 = 2 → 1.25
    expect(mse([1, 2, 3, 4], [0, 2, 3, 6], 2)).toBeCloseTo(1.25, 12);
    const r = run({ task: 'regression', labels: Float32Array.from([0, 2, 3, 6]), numOutputs: 2, numFeatures: 1, predictions: Float32Array.from([1, 2, 3, 4]) });
    expect(mseMetric.compute(r, exact).value).toBeCloseTo(1.25, 6);
    expect(mseMetric.tasks).toEqual(['regression']);
  });
});

describe('fidelity', () => {
  it('is KL(softmax(g) || softmax(z)) summed over classes', () => {
    // q = [.5, .5], p = [.75, .25]: .5 ln(.5/.75) + .5 ln(.5/.25) = .5 ln(4/3)
    expect(fidelity([0, 0], [Math.log(3), 0], 2)).toBeCloseTo(0.5 * Math.log(4 / 3), 10);
  });
  it('is 0 when g equals the logits up to a shift (SOP by construction)', () => {
    expect(fidelity([1, 2, 3, -1, 0, 4], [1, 2, 3, -1, 0, 4], 3)).toBeCloseTo(0, 12);
    expect(fidelity([11, 12, 13], [1, 2, 3], 3)).toBeCloseTo(0, 10);
  });
  it('compares against the backbone for post-hoc and the own output for faithful methods', () => {
    const r = run({
      labels: Float32Array.from([0]),
      numOutputs: 2,
      numFeatures: 1,
      allClassAttributions: Float32Array.from([0, 0]),
      backboneOutputs: Float32Array.from([Math.log(3), 0]),
      predictions: Float32Array.from([5, 5]),
    });
    expect(fidelityMetric.compute(r, exact).value).toBeCloseTo(0.5 * Math.log(4 / 3), 6);
    expect(fidelityMetric.compute(r, { ...exact, faithfulByConstruction: true }).value).toBeCloseTo(0, 10);
  });
});

describe('insertion / deletion', () => {
  it('reference score = mean(curve) / curve[last]', () => {
    expect(referenceScore([0.2, 0.4, 0.6, 0.8, 1.0])).toBeCloseTo(0.6, 12);
    expect(referenceScore([1, 0, 0, 1])).toBeCloseTo(0.5, 12);
    expect(referenceScore([0.1, 0.2, 0.3, 0.4])).toBeCloseTo(0.25 / 0.4, 12);
  });
  it('trapezoid AUC over the fractions, normalised by their span', () => {
    expect(trapezoidAuc([0.25, 0.5, 0.75, 1], [1, 0, 0, 1])).toBeCloseTo(1 / 3, 12);
    expect(trapezoidAuc([0, 0.5, 1], [0, 1, 0])).toBeCloseTo(0.5, 12);
    expect(trapezoidAuc([0.1, 1], [0.3, 0.3])).toBeCloseTo(0.3, 12);
  });
  it('metrics average per-example scores', () => {
    const fractions = [0.25, 0.5, 0.75, 1];
    const insertion = Float32Array.from([1, 0, 0, 1, 0.2, 0.4, 0.6, 0.8]);
    const deletion = Float32Array.from([0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.5, 0.5]);
    const r = run({ labels: Float32Array.from([0, 1]), numOutputs: 2, numFeatures: 4, curves: { fractions, insertion, deletion } });
    // insertion: (.5 + (.5/.8)) / 2 ; deletion: (.625 + 1) / 2
    expect(insertionMetric.compute(r, exact).value).toBeCloseTo((0.5 + 0.5 / 0.8) / 2, 6);
    expect(deletionMetric.compute(r, exact).value).toBeCloseTo((0.625 + 1) / 2, 6);
    expect(insertionMetric.direction).toBe('higher');
    expect(deletionMetric.direction).toBe('lower');
    // AUC: example 0 → 1/3; example 1: linear .2→.8 over [.25, 1] → mean .5
    const auc = insertionAucMetric.compute(r, exact).value;
    expect(auc).toBeCloseTo((1 / 3 + 0.5) / 2, 6);
    const d = insertionMetric.compute(r, exact).details as { auc: number; meanCurve: number[] };
    expect(d.auc).toBeCloseTo(auc, 6);
    expect(d.meanCurve[0]).toBeCloseTo(0.6, 6);
    const cs = curveScores(fractions, insertion);
    expect(cs.raw[1]).toBeCloseTo(0.5, 6);
  });
  it('regression variants use the mean MSE along the curve with flipped directions', () => {
    const r = run({
      task: 'regression',
      labels: Float32Array.from([0]),
      numOutputs: 1,
      numFeatures: 2,
      curves: { fractions: [0.5, 1], insertion: Float32Array.from([0.4, 0.2]), deletion: Float32Array.from([0.6, 0.2]) },
    });
    expect(deletionMseMetric.compute(r, exact).value).toBeCloseTo(0.4, 6);
    expect(deletionMseMetric.direction).toBe('higher');
    expect(deletionMseMetric.name).toBe('deletion-mse');
  });
});

describe('iou / coverage', () => {
  const masks = Float32Array.from([1, 1, 0, 0, 1, 0, 0, 0]);
  const truth = Float32Array.from([0, 1, 1, 0, 0, 0, 0, 0]);
  it('true IoU and the reference coverage (|M∩S|+ε)/(|S|+ε)', () => {
    // ex 0: ∩ 1, ∪ 3, |S| 2 → iou 1/3, coverage 1/2; ex 1: S empty → iou 0, coverage ε/ε = 1
    expect(iou(masks, truth, 4)).toBeCloseTo(1 / 6, 12);
    expect(coverage(masks, truth, 4)).toBeCloseTo(0.75, 12);
    const r = run({ labels: Float32Array.from([0, 0]), numOutputs: 2, numFeatures: 4, featureMasks: masks, groundTruth: truth });
    expect(iouMetric.compute(r, exact).value).toBeCloseTo(1 / 6, 6);
    expect(coverageMetric.compute(r, exact).value).toBeCloseTo(0.75, 6);
    expect(coverageMetric.requires).toEqual(['featureMasks', 'groundTruth']);
  });
});

describe('purity (CosmoGrid)', () => {
  // 20 pixels: one bright cluster pixel 20, eighteen -1 (void), one 0. mean .1, unbiased σ = sqrt(417.8/19) ≈ 4.689, 3σ ≈ 14.07
  const img = new Float32Array(20).fill(-1);
  img[0] = 20;
  img[19] = 0;
  const m0 = new Float32Array(20);
  m0.fill(1, 0, 4); // values 20, -1, -1, -1: bright 1/4, mean > 0 → dark 0
  const m1 = new Float32Array(20);
  m1.fill(1, 1, 20); // 18×-1 and 0: bright 0, mean < 0 → dark 18/19
  it('bright and dark fractions', () => {
    expect(maskFractions(img, m0)).toEqual({ bright: 0.25, dark: 0 });
    const f1 = maskFractions(img, m1);
    expect(f1.bright).toBe(0);
    expect(f1.dark).toBeCloseTo(18 / 19, 12);
    expect(maskFractions(img, new Float32Array(20))).toEqual({ bright: 0, dark: 0 });
  });
  it('share of passed tests (bright > .015, dark > .6) per output, averaged over images', () => {
    const values = new Float32Array(40);
    values.set(img, 0);
    values.set(img, 20);
    const masks = new Float32Array(80);
    masks.set(m0, 0);
    masks.set(m1, 20); // image 0: Ω-bright ✓ Ω-dark ✗ σ-bright ✗ σ-dark ✓ → 0.5; image 1: empty masks → 0
    const maps = { values, pixels: 20, masks, outputs: 2 };
    expect(purity(maps)).toBeCloseTo(0.25, 12);
    expect(purity(maps, { bright: 0.3 })).toBeCloseTo(0.125, 12);
    const r: MapRun = { ...run({ task: 'regression', modality: 'map', labels: new Float32Array(4), numOutputs: 2, numFeatures: 20 }), maps };
    expect(purityMetric.compute(r, exact).value).toBeCloseTo(0.25, 6);
    expect(() => purityMetric.compute(run({ labels: new Float32Array(2), numOutputs: 2, numFeatures: 20 }))).toThrow(/maps/);
  });
});

describe('sparsity curve', () => {
  it('error per keep and their mean', () => {
    const labels = Float32Array.from([0, 1]);
    const keepSweep = { keeps: [0.5, 1], predictions: [Float32Array.from([1, 0, 1, 0]), Float32Array.from([1, 0, 0, 1])] };
    expect(sparsityCurve(keepSweep, labels, 'classification', 2)).toEqual({ keeps: [0.5, 1], values: [0.5, 0] });
    const r = run({ labels, numOutputs: 2, numFeatures: 2, keepSweep });
    const v = sparsityCurveMetric.compute(r, exact);
    expect(v.value).toBeCloseTo(0.25, 12);
    expect(v.details?.values).toEqual([0.5, 0]);
  });
  it('MSE for regression', () => {
    const keepSweep = { keeps: [0.5, 1], predictions: [Float32Array.from([2]), Float32Array.from([1])] };
    expect(sparsityCurve(keepSweep, Float32Array.from([0]), 'regression', 1).values).toEqual([4, 1]);
  });
});

describe('bootstrap', () => {
  it('constant values: mean = value, std = 0', () => {
    expect(bootstrap([3, 3, 3], { resamples: 4, seed: 1 })).toMatchObject({ mean: 3, std: 0 });
  });
  it('is the mean and (ddof 0) std of the resample means, with indices from the seeded Rng', () => {
    const values = [0, 1, 4];
    const rng = new Rng(7);
    const means: number[] = [];
    for (let r = 0; r < 4; r++) {
      let s = 0;
      for (let i = 0; i < 3; i++) s += values[rng.int(3)];
      means.push(s / 3);
    }
    const m = means.reduce((a, b) => a + b) / 4;
    const sd = Math.sqrt(means.reduce((a, b) => a + (b - m) ** 2, 0) / 4);
    const b = bootstrap(values, { resamples: 4, seed: 7 });
    expect(b.means).toEqual(means);
    expect(b.mean).toBeCloseTo(m, 12);
    expect(b.std).toBeCloseTo(sd, 12);
    expect(bootstrap(values, { resamples: 4, seed: 7 })).toEqual(b);
  });
  it('rejects an empty sample', () => {
    expect(() => bootstrap([], {})).toThrow(/empty/);
  });
});

describe('group leakage', () => {
  it('one gradient step of softmax regression matches the hand-computed update', () => {
    // x = [[1], [0]], y = [1, 0]; p = .5 everywhere; dW0 = (.5)(1) + (.5)(0) = .5, dW1 = -.5; /n = 2, lr 1
    const m = trainLogisticRegression([1, 0], [1, 0], 1, 2, { epochs: 1, lr: 1, l2: 0 });
    expect(m.weights[0]).toBeCloseTo(-0.25, 12);
    expect(m.weights[1]).toBeCloseTo(0.25, 12);
    expect(m.bias[0]).toBeCloseTo(0, 12);
    expect(Array.from(predictLogistic(m, [1, 0]))).toEqual([1, 0]);
  });
  const n = 40;
  const labels = Float32Array.from({ length: n }, (_, i) => i % 2);
  it('a label encoded in the masks is found (probe accuracy 1)', () => {
    const masks = new Float32Array(n * 2 * 3);
    for (let i = 0; i < n; i++) {
      masks[i * 6 + (labels[i] === 1 ? 0 : 1)] = 1; // group 0: feature 0 iff label 1, else feature 1
      masks[i * 6 + 3 + 2] = 1; // group 1: always feature 2
    }
    const r = groupLeakage(masks, 2, 3, labels, 2, { seed: 3 });
    expect(r.probeAccuracy).toBe(1);
    expect(r.leakage).toBeCloseTo(1 - r.chance, 12);
    expect(r.chance).toBeGreaterThan(0.3);
    const v = groupLeakageMetric.compute(run({ labels, numOutputs: 2, numFeatures: 3, groups: { masks, weights: new Float32Array(n * 2), count: 2 } }), { seed: 3, resamples: 0 });
    expect(v.value).toBeCloseTo(r.leakage, 12);
    expect(groupLeakageMetric.category).toBe('leakage');
  });
  it('label-independent masks leak nothing (probe = majority = chance)', () => {
    const masks = new Float32Array(n * 2 * 3).fill(1);
    const r = groupLeakage(masks, 2, 3, labels, 2, { seed: 5 });
    expect(r.probeAccuracy).toBeCloseTo(r.chance, 12);
    expect(r.leakage).toBeCloseTo(0, 12);
  });
});
