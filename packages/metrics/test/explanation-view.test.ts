import { describe, expect, it } from 'vitest';
import { UserError, type Explanation, type FeatureSpace, type FloatTensor, type Inputs } from '@sop/core';
import { builtinMetric, defaultMetricNames, explanationView, renderExplanationHtml, resolveMetrics } from '../src/index.js';
import { columnsSpace } from './helpers.js';

/** 2×2 patches of 2×2 pixels over x [B, 1, 4, 4]. */
const patchSpace: FeatureSpace = {
  kind: 'patches',
  numFeatures: 4,
  grid: [2, 2],
  featureNames: () => ['p0', 'p1', 'p2', 'p3'],
  expand(masks: Float32Array, rows: ArrayLike<number>): FloatTensor {
    const out = new Float32Array(rows.length * 16);
    for (let r = 0; r < rows.length; r++) for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) out[r * 16 + y * 4 + x] = masks[r * 4 + (y >> 1) * 2 + (x >> 1)];
    return { data: out, shape: [rows.length, 1, 4, 4] };
  },
  aggregate: (a: FloatTensor) => a,
  featureValues: (inputs: Inputs) => ({ data: new Float32Array(inputs.x.shape[0] * 16), shape: [inputs.x.shape[0], 4, 4] }),
};

function explanation(n: number): Explanation {
  return {
    outputs: Float32Array.from({ length: n * 2 }, (_, k) => (k % 2 ? 1 : 0)),
    numOutputs: 2,
    attributions: Float32Array.from({ length: n * 4 }, (_, k) => k % 4),
    numFeatures: 4,
    targets: new Int32Array(n).fill(1),
    featureMasks: new Float32Array(n * 4),
    groups: { count: 2, masks: Float32Array.from({ length: n * 8 }, (_, k) => ((k % 8) < 2 ? 1 : (k % 8) >= 6 ? 1 : 0)), weights: Float32Array.from({ length: n * 2 }, (_, k) => (k % 2 ? 0.75 : 0.25)) },
    meta: { method: 'sop', evaluations: n },
  };
}

describe('explanationView', () => {
  it('image groups are expanded to pixels through the feature space', () => {
    const inputs = { x: { data: Float32Array.from({ length: 32 }, (_, k) => k), shape: [2, 1, 4, 4] } };
    const v = explanationView(explanation(2), 1, { inputs, space: patchSpace, modality: 'image', classNames: ['cat', 'dog'] });
    expect(v.prediction).toBe(`explained class: dog (p = ${(Math.E / (1 + Math.E)).toFixed(3)})`);
    expect(v.image!.shape).toEqual([1, 4, 4]);
    expect(Array.from(v.image!.pixels)[0]).toBe(16);
    // group 0 = patches 0,1 → top two pixel rows
    expect(Array.from(v.image!.groups!.masks).slice(0, 16)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(v.image!.groups!.weights)).toEqual([0.25, 0.75]);
    const html = renderExplanationHtml(v);
    expect(html).toContain('group 1 · w = 0.750');
    expect((html.match(/data:image\/png/g) ?? []).length).toBe(4);
  });
  it('tabular rows use the feature names and values', () => {
    const inputs = { x: { data: Float32Array.from([1, 2, 3, 4]), shape: [1, 4] } };
    const v = explanationView(explanation(1), 0, { inputs, space: columnsSpace(4), modality: 'tabular' });
    expect(v.tabular!.featureNames).toEqual(['f0', 'f1', 'f2', 'f3']);
    expect(v.tabular!.values).toEqual([1, 2, 3, 4]);
    expect(() => explanationView(explanation(1), 3, { inputs, space: columnsSpace(4), modality: 'tabular' })).toThrow(UserError);
    expect(() => explanationView(explanation(1), 0, { inputs, space: columnsSpace(4), modality: 'text', tokens: ['a'] })).toThrow(/4 tokens/);
  });
});

describe('metric selection', () => {
  it('resolves names and lists the known ones on a typo', () => {
    expect(resolveMetrics(['error', 'coverage']).map((m) => m.name)).toEqual(['error', 'coverage']);
    expect(() => resolveMetrics(['eror'])).toThrow(/unknown metric 'eror'/);
    const custom = { ...builtinMetric('error')!, name: 'mine' };
    expect(resolveMetrics(['mine'], [custom])[0]).toBe(custom);
  });
  it('defaults per task and modality', () => {
    expect(defaultMetricNames('classification', 'image', { groundTruth: true })).toEqual(['error', 'coverage', 'iou', 'fidelity', 'insertion', 'deletion', 'sparsity-curve', 'group-leakage']);
    expect(defaultMetricNames('regression', 'map')).toEqual(['mse', 'purity', 'insertion-mse', 'deletion-mse', 'sparsity-curve']);
  });
});
