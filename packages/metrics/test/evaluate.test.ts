import { describe, expect, it } from 'vitest';
import { UserError } from '@sop/core';
import { builtinMetrics, builtinMetric, evaluate, rankFeatures, type EvaluateProgress } from '../src/index.js';
import { columnsSpace, linearBackbone, linearExplainer, zeroMasker } from './helpers.js';

// logits_0 = x0 + x1, logits_1 = x2 + x3
const W = [
  [1, 0],
  [1, 0],
  [0, 1],
  [0, 1],
];
const X = Float32Array.from([2, 1, 0, 0, 0, 0, 1, 3, 1, 0, 0, 2, 0, 2, 1, 0]);
const labels = Float32Array.from([0, 1, 1, 0]);
const groundTruth = Float32Array.from([1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0]);
const sig = (z: number) => 1 / (1 + Math.exp(-z));

function setup() {
  const backbone = linearBackbone(W);
  const good = linearExplainer('exact-F', backbone, W, 1);
  const anti = linearExplainer('anti-F', backbone, W, -1);
  const sop = linearExplainer('sop', backbone, W, 1, true);
  return { backbone, good, anti, sop };
}

const names = ['accuracy', 'error', 'coverage', 'iou', 'fidelity', 'insertion', 'deletion', 'sparsity-curve', 'group-leakage', 'mse', 'purity'];
const metrics = names.map((n) => builtinMetric(n)!);

describe('evaluate', () => {
  it('ranks features with ties by index and padding excluded', () => {
    expect(rankFeatures([2, 1, 0, 0], undefined, 0, 4, true)).toEqual([0, 1, 2, 3]);
    expect(rankFeatures([2, 1, 0, 0], undefined, 0, 4, false)).toEqual([2, 3, 1, 0]);
    expect(rankFeatures([2, 1, 0, 0], [1, 0, 1, 1], 0, 4, true)).toEqual([0, 2, 3]);
  });

  it('fills runs, scores every method and adds a backbone row', async () => {
    const { backbone, good, anti, sop } = setup();
    const events: EvaluateProgress[] = [];
    const res = await evaluate({
      explainers: [good, anti, sop],
      backbone,
      space: columnsSpace(4),
      masker: zeroMasker,
      inputs: { x: { data: X, shape: [4, 4] } },
      labels,
      task: 'classification',
      modality: 'tabular',
      numOutputs: 2,
      groundTruth,
      metrics,
      keep: 0.5,
      steps: 4,
      keeps: [0.5, 1],
      resamples: 0,
      maxRows: 5,
      onProgress: (e) => events.push(e),
    });
    expect(res.rows.map((r) => r.method)).toEqual(['backbone', 'exact-F', 'anti-F', 'sop']);
    const row = (m: string) => res.rows.find((r) => r.method === m)!;
    // backbone: prediction-only metrics
    expect(row('backbone').accuracy).toBe(1);
    expect(row('backbone').error).toBe(0);
    expect(row('backbone').coverage).toBeUndefined();
    // -F at keep .5: exact attribution keeps the class's features → error 0; anti keeps the wrong ones → 3/4 wrong
    expect(row('exact-F').error).toBe(0);
    expect(row('anti-F').error).toBeCloseTo(0.75, 12);
    // coverage: 1, 1, 1/2 (row 2 keeps {3, 0}), 1 → .875; iou 1, 1, 1/3, 1
    expect(row('exact-F').coverage).toBeCloseTo(0.875, 12);
    expect(row('exact-F').iou).toBeCloseTo((3 + 1 / 3) / 4, 12);
    // fidelity: g = logits → 0 for the exact method (vs backbone) and for SOP (vs its own output)
    expect(row('exact-F').fidelity).toBeCloseTo(0, 6);
    expect(row('sop').fidelity).toBeCloseTo(0, 6);
    expect(row('anti-F').fidelity).toBeGreaterThan(0.1);
    // curves, row 0 (x = [2,1,0,0], ŷ = 0): insertion keeps 0 | 0,1 | 0,1,2 | all; deletion keeps 2 | 2,3 | 2,3,1 | all
    const run = res.runs.find((r) => r.method === 'exact-F')!;
    expect(run.curves!.fractions).toEqual([0.25, 0.5, 0.75, 1]);
    const ins0 = Array.from(run.curves!.insertion.subarray(0, 4));
    const del0 = Array.from(run.curves!.deletion.subarray(0, 4));
    [sig(2), sig(3), sig(3), sig(3)].forEach((v, i) => expect(ins0[i]).toBeCloseTo(v, 6));
    [0.5, 0.5, sig(1), sig(3)].forEach((v, i) => expect(del0[i]).toBeCloseTo(v, 6));
    expect(row('exact-F').insertion as number).toBeGreaterThan(row('anti-F').insertion as number);
    expect(row('exact-F').deletion as number).toBeLessThan(row('anti-F').deletion as number);
    // SOP curves come from explain at each keep (+1e-4), with deletion: true for deletion
    const keeps = sop.calls.map((c) => c.keep);
    expect(keeps).toContain(0.2500 + 1e-4);
    expect(sop.calls.some((c) => c.deletion === true)).toBe(true);
    expect(good.calls.some((c) => c.deletion === true)).toBe(false);
    // SOP curves equal the mask protocol here (same ranking), so the scores match
    expect(row('sop').insertion).toBeCloseTo(row('exact-F').insertion as number, 6);
    // sparsity sweep: keep .5 reuses the main explanation, keep 1 is one more call
    expect(res.curves.sparsity.find((s) => s.method === 'exact-F')).toEqual({ method: 'exact-F', keeps: [0.5, 1], values: [0, 0], kind: 'error' });
    expect(res.curves.sparsity.find((s) => s.method === 'anti-F')!.values[0]).toBeCloseTo(0.75, 12);
    expect(res.curves.insertionDeletion.map((c) => [c.method, c.mode])).toEqual([
      ['exact-F', 'mask'],
      ['anti-F', 'mask'],
      ['sop', 'explain'],
    ]);
    // group leakage only for the method that has groups; mse/purity don't apply to classification/tabular
    expect(row('sop')['group-leakage']).toBeDefined();
    expect(row('exact-F')['group-leakage']).toBeUndefined();
    expect(res.skipped.some((s) => s.metric === 'mse' && s.method === '*')).toBe(true);
    expect(res.skipped.some((s) => s.metric === 'group-leakage' && s.method === 'exact-F')).toBe(true);
    expect(res.metrics.map((m) => m.name)).not.toContain('purity');
    // progress
    expect(events.some((e) => e.stage === 'curves' && e.method === 'exact-F')).toBe(true);
    expect(events.at(-1)!.stage).toBe('done');
    // all-classes asked only because fidelity is there; budget and keep passed through
    expect(good.calls[0]).toMatchObject({ keep: 0.5, budget: 20, allClasses: true, target: 'predicted' });
  });

  it('reports bootstrap stds by default', async () => {
    const { backbone, anti } = setup();
    const res = await evaluate({
      explainers: [anti],
      backbone,
      space: columnsSpace(4),
      masker: zeroMasker,
      inputs: { x: { data: X, shape: [4, 4] } },
      labels,
      task: 'classification',
      modality: 'tabular',
      numOutputs: 2,
      metrics: [builtinMetric('error')!],
      keep: 0.5,
    });
    expect(typeof res.rows[1].error_std).toBe('number');
    expect(res.values['anti-F'].error.details?.exactMean).toBeCloseTo(0.75, 12);
  });

  it('regression on maps: MSE, MSE curves and purity from per-output masks', async () => {
    // 2 outputs: y_k = sum of pixels in half k; 1×4 "map" pixels are the features
    const Wr = [
      [1, 0],
      [1, 0],
      [0, 1],
      [0, 1],
    ];
    const backbone = linearBackbone(Wr);
    const ex = linearExplainer('lin-F', backbone, Wr, 1);
    const x = Float32Array.from([-1, -1, -1, 30, -1, -1, -1, -1]);
    const res = await evaluate({
      explainers: [ex],
      backbone,
      space: columnsSpace(4),
      masker: zeroMasker,
      inputs: { x: { data: x, shape: [2, 4] } },
      labels: Float32Array.from([-2, 29, -2, -2]),
      task: 'regression',
      modality: 'map',
      numOutputs: 2,
      metrics: builtinMetrics.filter((m) => ['mse', 'insertion-mse', 'deletion-mse', 'purity', 'error'].includes(m.name)),
      keep: 0.5,
      steps: 2,
      resamples: 0,
      metricOptions: { purity: { sigmas: 1 } },
    });
    const row = res.rows.find((r) => r.method === 'lin-F')!;
    expect(res.rows[0]).toMatchObject({ method: 'backbone', mse: 0 });
    expect(typeof row.mse).toBe('number');
    expect(typeof row['insertion-mse']).toBe('number');
    // per-output targets were explained for the maps
    expect(ex.calls.filter((c) => c.target === 0 || c.target === 1).length).toBe(2);
    // row 0 [-1,-1,-1,30] (σ = 15.5): both masks hold the 30 → bright ✓, dark ✗; row 1 all −1: both masks dark ✓
    expect(row.purity).toBeCloseTo(0.5, 12);
    expect(res.metrics.map((m) => m.name)).not.toContain('error');
  });

  it('sweepMode mask reproduces the -F sweep without re-explaining; limit takes the first examples', async () => {
    const { backbone, good, anti } = setup();
    const res = await evaluate({
      explainers: [good, anti],
      backbone,
      space: columnsSpace(4),
      masker: zeroMasker,
      inputs: { x: { data: X, shape: [4, 4] } },
      labels,
      task: 'classification',
      modality: 'tabular',
      numOutputs: 2,
      metrics: [builtinMetric('sparsity-curve')!],
      keep: 0.5,
      keeps: [0.25, 0.5, 1],
      sweepMode: 'mask',
      resamples: 0,
    });
    expect(good.calls.length).toBe(1);
    expect(res.curves.sparsity[0].values).toEqual([0, 0, 0]);
    // anti-F keeps feature 0 at .25 (first of the tied zeros): rows → x=0 (tie → class 0 ✓), 0 ✗, [1,0,0,0] ✗, 0 ✓
    expect(res.curves.sparsity[1].values[0]).toBeCloseTo(0.5, 12);
    expect(res.curves.sparsity[1].values[1]).toBeCloseTo(0.75, 12);
    expect(res.curves.sparsity[1].values[2]).toBe(0);
    const lim = await evaluate({
      explainers: [setup().good],
      backbone,
      space: columnsSpace(4),
      masker: zeroMasker,
      inputs: { x: { data: X, shape: [4, 4] } },
      labels,
      groundTruth,
      task: 'classification',
      modality: 'tabular',
      numOutputs: 2,
      metrics: [builtinMetric('coverage')!],
      keep: 0.5,
      limit: 2,
      resamples: 0,
    });
    expect(lim.numExamples).toBe(2);
    expect(lim.rows[1].coverage).toBe(1);
  });

  it('rejects bad shapes and settings as UserErrors', async () => {
    const { backbone, good } = setup();
    const base = {
      explainers: [good],
      backbone,
      space: columnsSpace(4),
      masker: zeroMasker,
      inputs: { x: { data: X, shape: [4, 4] } },
      task: 'classification' as const,
      modality: 'tabular' as const,
      numOutputs: 2,
      metrics,
    };
    await expect(evaluate({ ...base, labels: new Float32Array(3) })).rejects.toThrow(UserError);
    await expect(evaluate({ ...base, labels, keep: 0 })).rejects.toThrow(/keep/);
    await expect(evaluate({ ...base, labels, numOutputs: 3 })).rejects.toThrow(/backbone 'linear' output has 8 values, expected 12/);
    await expect(evaluate({ ...base, labels, explainers: [good, good] })).rejects.toThrow(/twice/);
  });
});
