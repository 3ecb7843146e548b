import { describe, expect, it } from 'vitest';
import { Container } from 'inversify';
import { TOKENS, listPlugins, resolvePlugin, type Attributor } from '@sop/core';
import { allAttributors, baselinesModule, faithfulFactory, kernelShap, lime, rise, toFaithful, topFeatureMasks, type FaithfulExplainerFactory } from '../src/index.js';
import { columnsSpace, ctx, linearModel, mlpModel, patchesSpace, rowBackbone, scalarModel, t, zeroMasker } from './helpers.js';

describe('-F conversion', () => {
  it('keeps exactly ⌊keep·d⌋ features (ties by index) and predicts like a direct masked forward', async () => {
    const d = 7;
    const model = mlpModel(d, 6, 3, 5);
    const bb = rowBackbone(model, { withVjp: false });
    const space = columnsSpace(d);
    const x = Float32Array.from({ length: 2 * d }, (_, i) => Math.sin(i + 1));
    const context = ctx(bb, space);
    const fx = toFaithful(kernelShap, context);
    expect(fx.name).toBe('kernel-shap-f');
    for (const keep of [0.2, 0.5, 1]) {
      const e = await fx.explain({ x: t(x, [2, d]) }, { keep, seed: 1, budget: 40 });
      const a = await kernelShap.attribute({ x: t(x, [2, d]) }, context, { seed: 1, budget: 40 });
      for (let b = 0; b < 2; b++) {
        const m = e.featureMasks.subarray(b * d, (b + 1) * d);
        expect(m.reduce((s, v) => s + v, 0)).toBe(Math.floor(keep * d));
        // the kept ones are the largest attributions
        const kept = Array.from(m).map((v, j) => (v ? a.values[b * d + j] : Infinity));
        const dropped = Array.from(m).map((v, j) => (v ? -Infinity : a.values[b * d + j]));
        expect(Math.min(...kept)).toBeGreaterThanOrEqual(Math.max(...dropped));
        const direct = model.f(Float64Array.from(x.subarray(b * d, (b + 1) * d), (v, j) => v * m[j]));
        for (let c = 0; c < 3; c++) expect(e.outputs[b * 3 + c]).toBeCloseTo(direct[c], 5);
      }
      expect(e.meta.evaluations).toBe(2 * 40 + 2);
    }
  });

  it('breaks ties by index and honours validFeatures and deletion', () => {
    const v = Float32Array.from([1, 1, 1, 0, 2, 1]);
    expect(Array.from(topFeatureMasks(v, 1, 6, 0.5))).toEqual([1, 1, 0, 0, 1, 0]);
    expect(Array.from(topFeatureMasks(v, 1, 6, 0.5, Float32Array.from([0, 1, 1, 1, 1, 0])))).toEqual([0, 1, 0, 0, 1, 0]);
    expect(Array.from(topFeatureMasks(v, 1, 6, 0.34, undefined, true))).toEqual([1, 0, 0, 1, 0, 0]);
  });

  it('allClasses returns g_c = Σ attribution_c per class (C extra attributions)', async () => {
    const W = [[1, 2, 0], [0, -1, 3]];
    const bb = rowBackbone(linearModel(W), { withVjp: false });
    const fx = toFaithful(kernelShap, ctx(bb, columnsSpace(3)));
    const e = await fx.explain({ x: t([1, 1, 1], [1, 3]) }, { keep: 0.34, allClasses: true, budget: 8 });
    // exact (2^3 = 8): Σφ_c = f_c(x) − f_c(0)
    expect(e.allClassAttributions![0]).toBeCloseTo(3, 4);
    expect(e.allClassAttributions![1]).toBeCloseTo(2, 4);
    expect(e.meta.evaluations).toBe(8 + 1 + 2 * 8);
  });

  it('works on patches (every channel summed by the feature space)', async () => {
    const space = patchesSpace(2, 4, 4, 2);
    const model = scalarModel(32, (x) => x.reduce((s, v, i) => s + v * (i % 16 < 8 ? 2 : 0.1), 0), () => []);
    const fx = toFaithful(rise, ctx(rowBackbone(model, { withVjp: false }), space, zeroMasker()));
    const e = await fx.explain({ x: t(new Float32Array(32).fill(1), [1, 2, 4, 4]) }, { keep: 0.5, budget: 64, seed: 2 });
    // top two patches are the top row (pixels 0..7 of each channel)
    expect(Array.from(e.featureMasks)).toEqual([1, 1, 0, 0]);
    expect(e.outputs[0]).toBeCloseTo(2 * 16 + 0, 4);
  });
});

describe('registry and container', () => {
  it('binds every attributor and its -F factory under the attributor slot', async () => {
    const c = new Container();
    await c.load(baselinesModule);
    const names = listPlugins(c).attributor;
    const all = allAttributors();
    expect(all.map((a) => a.name)).toEqual(['lime', 'kernel-shap', 'permutation-shap', 'rise', 'archipelago', 'gradient', 'input-x-gradient', 'integrated-gradients', 'gradcam', 'fullgrad', 'mfaba', 'agi', 'ampe', 'fresh']);
    for (const a of all) {
      expect(names).toContain(a.name);
      expect(names).toContain(`${a.name}-f`);
      expect(resolvePlugin<Attributor>(c, 'attributor', a.name)).toBe(a);
      const f = resolvePlugin<FaithfulExplainerFactory>(c, 'attributor', `${a.name}-f`);
      expect(f.attributor).toBe(a);
    }
    expect(c.isBound(TOKENS.attributor, { name: 'lime-f' })).toBe(true);
    const fx = faithfulFactory(lime).create(ctx(rowBackbone(linearModel([[1, 1]]), { withVjp: false }), columnsSpace(2)));
    expect(fx.faithfulByConstruction).toBe(false);
  });
});
