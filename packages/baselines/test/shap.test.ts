import { describe, expect, it } from 'vitest';
import { kernelShap, permutationShap, kernelShapCoalitions } from '../src/index.js';
import { Rng } from '@sop/core';
import { columnsSpace, ctx, exactShapley, maxAbsDiff, rowBackbone, scalarModel, t } from './helpers.js';

function nonlinear(d: number) {
  const f = (x: Float64Array): number => {
    let s = 0;
    for (let i = 0; i < d; i++) s += (i + 1) * 0.3 * x[i];
    return s + 2 * x[0] * x[1] * x[2] + Math.sin(x[3] + x[4]) + x[5] * x[5] * x[6] + Math.exp(0.3 * x[d - 1] * x[0]);
  };
  return scalarModel(d, f, () => new Array(d).fill(0));
}

const xs = (d: number, B: number): Float32Array => Float32Array.from({ length: d * B }, (_, i) => 0.5 + ((i * 7919) % 13) / 10 - 0.3 * (i % 3));

function exactFor(model: ReturnType<typeof nonlinear>, x: Float32Array, d: number, b: number): number[] {
  const row = x.subarray(b * d, (b + 1) * d);
  return exactShapley(d, (m) => model.f(Float64Array.from(row, (v, i) => v * m[i]))[0]);
}

describe('kernel-shap', () => {
  it('equals the enumerated exact Shapley values when budget ≥ 2^d (d = 8 and d = 10)', async () => {
    for (const d of [8, 10]) {
      const model = nonlinear(d);
      const x = xs(d, 2);
      const a = await kernelShap.attribute({ x: t(x, [2, d]) }, ctx(rowBackbone(model, { withVjp: false }), columnsSpace(d)), { budget: 2 ** d, seed: 1 });
      expect(a.meta.evaluations).toBe(2 * 2 ** d);
      for (let b = 0; b < 2; b++) {
        const ex = exactFor(model, x, d, b);
        expect(maxAbsDiff(a.values.subarray(b * d, (b + 1) * d), ex)).toBeLessThan(2e-4);
      }
    }
  });

  it('gets close with a partial budget, and the error shrinks as the budget grows (d = 10)', async () => {
    const d = 10;
    const model = nonlinear(d);
    const x = xs(d, 1);
    const ex = exactFor(model, x, d, 0);
    const errs: number[] = [];
    for (const budget of [60, 250, 700, 1000]) {
      let e = 0;
      for (const seed of [1, 2, 3]) {
        const a = await kernelShap.attribute({ x: t(x, [1, d]) }, ctx(rowBackbone(model, { withVjp: false }), columnsSpace(d)), { budget, seed });
        expect(a.meta.evaluations).toBeLessThanOrEqual(budget);
        e += maxAbsDiff(a.values, ex) / 3;
      }
      errs.push(e);
    }
    for (let i = 1; i < errs.length; i++) expect(errs[i]).toBeLessThan(errs[i - 1]);
    expect(errs[errs.length - 1]).toBeLessThan(0.05);
    // efficiency holds at every budget
  });

  it('satisfies efficiency Σφ = f(x) − f(∅) at SOP budget 20 with d > budget', async () => {
    const d = 30;
    const model = scalarModel(d, (x) => x.reduce((s, v, i) => s + Math.tanh(v * (i % 5 - 2)), 0), () => []);
    const x = Float32Array.from({ length: d }, (_, i) => 1 + (i % 4) * 0.5);
    const a = await kernelShap.attribute({ x: t(x, [1, d]) }, ctx(rowBackbone(model, { withVjp: false }), columnsSpace(d)));
    expect(a.meta.evaluations).toBe(20);
    const sum = a.values.reduce((s, v) => s + v, 0);
    expect(sum).toBeCloseTo(model.f(Float64Array.from(x))[0] - model.f(new Float64Array(d))[0], 4);
  });

  it('enumerates complete subset sizes with exact kernel weights', () => {
    const co = kernelShapCoalitions(6, 62, new Rng(0));
    expect(co.n).toBe(62);
    // weights of size-1 and size-5 coalitions: (d-1)/(C(d,s) s (d-s)) normalised
    const wsum = co.weights.reduce((a, b) => a + b, 0);
    expect(wsum).toBeCloseTo(1, 10);
  });
});

describe('permutation-shap', () => {
  it('is exact with one antithetic pair for functions with at most pairwise interactions', async () => {
    const d = 7;
    const model = scalarModel(d, (x) => x[0] * x[1] - 2 * x[2] * x[5] + 0.5 * x[3] + x[6] * x[6], () => []);
    const x = xs(d, 1);
    const a = await permutationShap.attribute({ x: t(x, [1, d]) }, ctx(rowBackbone(model, { withVjp: false }), columnsSpace(d)), { budget: 20, seed: 3 });
    expect(a.meta.permutations).toBe(2);
    expect(a.meta.evaluations).toBe(2 + 2 * (d - 1));
    expect(maxAbsDiff(a.values, exactFor(model as never, x, d, 0))).toBeLessThan(1e-5);
  });

  it('converges to exact Shapley values on a higher-order model (error shrinks with budget)', async () => {
    const d = 8;
    const model = nonlinear(d);
    const x = xs(d, 1);
    const ex = exactFor(model, x, d, 0);
    const errs: number[] = [];
    for (const budget of [30, 300, 3000]) {
      let e = 0;
      for (const seed of [1, 2, 3]) {
        const a = await permutationShap.attribute({ x: t(x, [1, d]) }, ctx(rowBackbone(model, { withVjp: false }), columnsSpace(d)), { budget, seed });
        e += maxAbsDiff(a.values, ex) / 3;
        const sum = a.values.reduce((s, v) => s + v, 0);
        expect(sum).toBeCloseTo(model.f(Float64Array.from(x))[0] - model.f(new Float64Array(d))[0], 4);
      }
      errs.push(e);
    }
    expect(errs[1]).toBeLessThan(errs[0]);
    expect(errs[2]).toBeLessThan(errs[1]);
    expect(errs[2]).toBeLessThan(0.05);
  });
});
