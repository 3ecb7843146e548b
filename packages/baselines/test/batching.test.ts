import { describe, expect, it } from 'vitest';
import { PatchesSpace } from '@sop/core';
import { allAttributors, archipelago, kernelShap, lime, permutationShap, resolveMaxBatch, rise, integratedGradients, ampe, mfaba, agi } from '../src/index.js';
import { columnsSpace, ctx, mlpModel, patchesSpace, rowBackbone, t } from './helpers.js';

const d = 6;
const B = 3;
const X = Float32Array.from({ length: B * d }, (_, i) => Math.cos(i * 1.3));
const model = mlpModel(d, 5, 3, 9);

describe('batching', () => {
  it('never calls forward more than ceil(rows / maxBatch) times, and counts rows', async () => {
    for (const m of [lime, kernelShap, permutationShap, rise]) {
      for (const maxBatch of [1, 7, 64, 1000]) {
        const bb = rowBackbone(model, { withVjp: false });
        const a = await m.attribute({ x: t(X, [B, d]) }, ctx(bb, columnsSpace(d)), { maxBatch, budget: 30, seed: 1 });
        expect(a.meta.evaluations).toBe(bb.forwardRows);
        expect(bb.forwardCalls).toBeLessThanOrEqual(Math.ceil(bb.forwardRows / maxBatch));
      }
    }
    // archipelago: one pass for all pairs (+ one for merged groups)
    const bb = rowBackbone(model, { withVjp: false });
    const a = await archipelago.attribute({ x: t(X, [B, d]) }, ctx(bb, columnsSpace(d)), { maxBatch: 50 });
    expect(a.meta.evaluations).toBe(bb.forwardRows);
    expect(bb.forwardCalls).toBeLessThanOrEqual(Math.ceil(bb.forwardRows / 50) + 1);
    // gradient paths: vjp rows in chunks too
    const g = rowBackbone(model);
    const ig = await integratedGradients.attribute({ x: t(X, [B, d]) }, ctx(g, columnsSpace(d)), { maxBatch: 16, target: 0 });
    expect(g.vjpRows).toBe(B * 20);
    expect(g.vjpCalls).toBe(Math.ceil((B * 20) / 16));
    expect(ig.meta.gradients).toBe(B * 20);
  });

  it('gives the same attributions whatever the chunking (chunk outputs joined, generated masks refilled per chunk)', async () => {
    const x = Float32Array.from({ length: B * 16 }, (_, i) => Math.sin(i * 0.7));
    const big = mlpModel(16, 5, 3, 4);
    for (const m of [lime, kernelShap, rise, archipelago]) {
      const runs = [];
      for (const maxBatch of [1, 7, undefined]) {
        const a = await m.attribute({ x: t(x, [B, 1, 4, 4]) }, ctx(rowBackbone(big, { withVjp: false }), new PatchesSpace([1, 4, 4], [1, 2])), { maxBatch, budget: 12, seed: 2 });
        runs.push(Array.from(a.values));
      }
      expect(runs[1]).toEqual(runs[0]);
      expect(runs[2]).toEqual(runs[0]);
    }
  });

  it('sizes chunks automatically by bytes per row', () => {
    expect(resolveMaxBatch({ x: t(new Float32Array(6), [1, 6]) }, undefined)).toBe(1024);
    expect(resolveMaxBatch({ x: t(new Float32Array(3 * 224 * 224), [1, 3, 224, 224]) }, undefined)).toBe(Math.floor((32 * 1024 * 1024) / (3 * 224 * 224 * 4)));
    expect(() => resolveMaxBatch({ x: t(new Float32Array(1), [1, 1]) }, 0)).toThrow(/maxBatch/);
  });

  it('is deterministic by seed (and differs across seeds for sampling methods)', async () => {
    const space = patchesSpace(1, 4, 6, 2);
    const x = Float32Array.from({ length: 24 * 2 }, (_, i) => Math.sin(i));
    const img = mlpModel(24, 4, 3, 2);
    for (const m of allAttributors()) {
      if (['gradcam', 'fullgrad', 'fresh'].includes(m.name)) continue;
      const run = (seed: number) => m.attribute({ x: t(x, [2, 1, 4, 6]) }, ctx(rowBackbone(img), space), { seed, budget: 24 });
      const a = await run(11);
      const b = await run(11);
      expect(Array.from(a.values), m.name).toEqual(Array.from(b.values));
      expect(a.values.every(Number.isFinite), m.name).toBe(true);
      if (['lime', 'kernel-shap', 'permutation-shap', 'rise', 'ampe'].includes(m.name)) {
        const c = await run(12);
        expect(Array.from(a.values), m.name).not.toEqual(Array.from(c.values));
      }
    }
    void [mfaba, agi, ampe];
  });

  it('resolves targets: label, index and per-example arrays', async () => {
    const bb = rowBackbone(model, { withVjp: false });
    const a = await lime.attribute({ x: t(X, [B, d]) }, ctx(bb, columnsSpace(d)), { target: 'label', labels: Float32Array.from([2, 0, 1]) });
    expect(Array.from(a.targets)).toEqual([2, 0, 1]);
    const b = await lime.attribute({ x: t(X, [B, d]) }, ctx(bb, columnsSpace(d)), { target: [1, 1, 0] });
    expect(Array.from(b.targets)).toEqual([1, 1, 0]);
    await expect(lime.attribute({ x: t(X, [B, d]) }, ctx(bb, columnsSpace(d)), { target: 5 })).rejects.toThrow(/outside/);
    await expect(lime.attribute({ x: t(X, [B, d]) }, ctx(bb, columnsSpace(d)), { target: 'label' })).rejects.toThrow(/labels/);
    await expect(lime.attribute({ x: t(X, [B, d]) }, ctx(bb, columnsSpace(d)), { baseline: 'mean' })).rejects.toThrow(/reference/);
    await expect(lime.attribute({ x: t(X, [B, d]) }, ctx(bb, columnsSpace(d)), { baseline: 'gray' as never })).rejects.toThrow(/unknown baseline/);
  });
});

describe('edge cases', () => {
  it('handles one and two features in every black-box method', async () => {
    for (const dd of [1, 2]) {
      const m = mlpModel(dd, 3, 2, 4);
      const x = Float32Array.from({ length: dd }, (_, i) => 1 + i);
      for (const meth of [lime, kernelShap, permutationShap, rise, archipelago]) {
        const a = await meth.attribute({ x: t(x, [1, dd]) }, ctx(rowBackbone(m, { withVjp: false }), columnsSpace(dd)), { seed: 0, output: 'logit' });
        expect(a.values.length).toBe(dd);
        expect(a.values.every(Number.isFinite), `${meth.name} d=${dd}`).toBe(true);
        if (meth.name === 'kernel-shap' || meth.name === 'permutation-shap') {
          const fx = m.f(Float64Array.from(x))[a.targets[0]] - m.f(new Float64Array(dd))[a.targets[0]];
          expect(a.values.reduce((s, v) => s + v, 0)).toBeCloseTo(fx, 4);
        }
      }
    }
  });
});
