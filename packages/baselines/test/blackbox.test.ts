import { describe, expect, it } from 'vitest';
import { archipelago, kernelShap, lime, rise } from '../src/index.js';
import { blendMasker, columnsSpace, ctx, linearModel, maxAbsDiff, patchesSpace, rowBackbone, scalarModel, t } from './helpers.js';

describe('lime', () => {
  it("recovers a linear model's coefficients (w_i·x_i under the zero masker)", async () => {
    const d = 6;
    const w = [1.5, -2, 0.5, 3, 0, -1];
    const x = Float32Array.from([1, 2, -1, 0.5, 4, 1.5]);
    const bb = rowBackbone(linearModel([w]), { withVjp: false });
    const a = await lime.attribute({ x: t(x, [1, d]) }, ctx(bb, columnsSpace(d)), { budget: 2000, seed: 7, output: 'logit' });
    const expected = w.map((wi, i) => wi * x[i]);
    // ridge α = 1 shrinks slightly; with α → 0 it is exact
    expect(maxAbsDiff(a.values, expected)).toBeLessThan(0.02);
    const exact = await lime.attribute({ x: t(x, [1, d]) }, ctx(bb, columnsSpace(d)), { budget: 200, seed: 7, output: 'logit', alpha: 0 });
    expect(maxAbsDiff(exact.values, expected)).toBeLessThan(1e-4);
    expect(exact.meta.evaluations).toBe(200);
  });

  it('explains the predicted class of a 3-class linear model by default, with probabilities', async () => {
    const W = [[1, 0, 0], [0, 5, 0], [0, 0, 1]];
    const bb = rowBackbone(linearModel(W), { withVjp: false });
    const a = await lime.attribute({ x: t([1, 1, 1], [1, 3]) }, ctx(bb, columnsSpace(3)), { budget: 300, seed: 1 });
    expect(a.targets[0]).toBe(1);
    expect(a.values[1]).toBeGreaterThan(0);
    expect(a.values[0]).toBeLessThan(0);
  });

  it("an example's explanation does not depend on its batch (one design shared by the batch)", async () => {
    const d = 5;
    const W = [[1, -2, 0.5, 3, 0], [0.3, 1, -1, 0, 2]];
    const bb = rowBackbone(linearModel(W), { withVjp: false });
    const xs = [[1, 2, -1, 0.5, 4], [0.5, -1, 2, 1, 1], [2, 0, 1, -1, 0.5]];
    const batch = await lime.attribute({ x: t(Float32Array.from(xs.flat()), [3, d]) }, ctx(bb, columnsSpace(d)), { budget: 40, seed: 4 });
    for (let b = 0; b < 3; b++) {
      const alone = await lime.attribute({ x: t(Float32Array.from(xs[b]), [1, d]) }, ctx(bb, columnsSpace(d)), { budget: 40, seed: 4 });
      expect(maxAbsDiff(batch.values.subarray(b * d, (b + 1) * d), alone.values)).toBeLessThan(1e-6);
      expect(batch.targets[b]).toBe(alone.targets[0]);
    }
  });
});

describe('rise', () => {
  it('ranks the one informative patch first', async () => {
    // x [1, 1, 8, 8], 2×2 patches → 4×4 grid; the output depends only on patch (1, 2)
    const space = patchesSpace(1, 8, 8, 2);
    const inf = (yy: number, xx: number): boolean => Math.floor(yy / 2) === 1 && Math.floor(xx / 2) === 2;
    const model = scalarModel(64, (x) => {
      let s = 0;
      for (let i = 0; i < 64; i++) if (inf(Math.floor(i / 8), i % 8)) s += x[i];
      return Math.tanh(s);
    }, () => []);
    const x = Float32Array.from({ length: 64 }, (_, i) => 0.3 + (i % 5) * 0.1);
    const a = await rise.attribute({ x: t(x, [1, 1, 8, 8]) }, ctx(rowBackbone(model, { withVjp: false }), space), { budget: 200, seed: 3, cells: 4 });
    let best = 0;
    for (let j = 1; j < 16; j++) if (a.values[j] > a.values[best]) best = j;
    expect(best).toBe(1 * 4 + 2);
    // normalised by N·p: E[f·M_j]/p = E[f | M_j = 1] ≈ f(x) for the informative patch
    const full = Math.tanh(x.reduce((s, v, i) => s + (inf(Math.floor(i / 8), i % 8) ? v : 0), 0));
    expect(a.values[6]).toBeGreaterThan(0.8 * full);
    expect(a.meta.evaluations).toBe(201);
  });

  it('also ranks it first with coarse cells (soft upsampled masks)', async () => {
    const space = patchesSpace(1, 16, 16, 2); // 8×8 grid
    const target = 3 * 8 + 5;
    const model = scalarModel(256, (x) => {
      let s = 0;
      for (let i = 0; i < 256; i++) if (Math.floor(Math.floor(i / 16) / 2) * 8 + Math.floor((i % 16) / 2) === target) s += x[i];
      return s;
    }, () => []);
    const x = Float32Array.from({ length: 256 }, () => 1);
    const a = await rise.attribute({ x: t(x, [1, 1, 16, 16]) }, ctx(rowBackbone(model, { withVjp: false }), space), { budget: 400, seed: 5, cells: 4 });
    let best = 0;
    for (let j = 1; j < 64; j++) if (a.values[j] > a.values[best]) best = j;
    // neighbours share cells; the informative patch (or a direct neighbour) is ranked first
    const [r, c] = [Math.floor(best / 8), best % 8];
    expect(Math.abs(r - 3) + Math.abs(c - 5)).toBeLessThanOrEqual(1);
  });
});

describe('archipelago', () => {
  it('ranks the interacting pair first as a merged group', async () => {
    const d = 6;
    const model = scalarModel(d, (x) => 3 * x[2] * x[4] + 0.5 * x[0] + 0.2 * x[1] - 0.3 * x[3] + 0.1 * x[5], () => []);
    const x = Float32Array.from([1, 1, 1, 1, 1, 1]);
    const a = await archipelago.attribute({ x: t(x, [1, d]) }, ctx(rowBackbone(model, { withVjp: false }), columnsSpace(d)), { topK: 1 });
    const inter = (a.meta.interactions as { i: number; j: number; strength: number }[][])[0];
    expect([inter[0].i, inter[0].j]).toEqual([2, 4]);
    expect(inter[0].strength).toBeCloseTo(9, 5);
    const g = a.groups![0];
    expect(g[0].features).toEqual([2, 4]);
    expect(g[0].weight).toBeCloseTo(3, 5);
    expect(a.values[2]).toBeCloseTo(3, 5);
    expect(a.values[0]).toBeCloseTo(0.5, 5);
    expect(a.meta.evaluations).toBe(2 * (15 + 6 + 1));
  });

  it('merges overlapping top pairs into one group and scores it with one extra evaluation', async () => {
    const d = 5;
    const model = scalarModel(d, (x) => 2 * x[0] * x[1] + 2 * x[1] * x[2] + 0.1 * x[3], () => []);
    const a = await archipelago.attribute({ x: t([1, 1, 1, 1, 1], [1, d]) }, ctx(rowBackbone(model, { withVjp: false }), columnsSpace(d)), { topK: 2 });
    expect(a.groups![0][0].features).toEqual([0, 1, 2]);
    expect(a.groups![0][0].weight).toBeCloseTo(4, 5);
    expect(a.meta.evaluations).toBe(2 * (10 + 5 + 1) + 1);
  });

  it('uses the masker as the baseline (mean masker)', async () => {
    const d = 3;
    const model = scalarModel(d, (x) => x[0] * x[1] + x[2], () => []);
    const mean = Float32Array.from([1, 1, 1]);
    const a = await archipelago.attribute({ x: t([2, 3, 4], [1, d]) }, ctx(rowBackbone(model, { withVjp: false }), columnsSpace(d), blendMasker('mean', mean)), { topK: 1, baseline: 'mean' });
    // group {0,1}: f(2,3,1) − f(1,1,1) = 7 − 2 = 5; {2}: f(1,1,4) − f(1,1,1) = 3
    expect(a.groups![0][0]).toEqual({ features: [0, 1], weight: 5 });
    expect(a.values[2]).toBeCloseTo(3, 5);
  });
});

describe('seed-determined designs are reused across calls', () => {
  it('same seed → same values; another seed in between or another size does not leak into it', async () => {
    const space = patchesSpace(1, 8, 8, 2);
    const model = scalarModel(64, (x) => Math.tanh(x.reduce((a, v, i) => a + v * ((i % 7) - 3) * 0.1, 0)), () => []);
    const bb = rowBackbone(model, { withVjp: false });
    const x = Float32Array.from({ length: 128 }, (_, i) => ((i * 13) % 10) / 10);
    const inputs = { x: t(x, [2, 1, 8, 8]) };
    for (const m of [lime, kernelShap, rise]) {
      const a = await m.attribute(inputs, ctx(bb, space), { budget: 30, seed: 1 });
      const other = await m.attribute(inputs, ctx(bb, space), { budget: 30, seed: 2 });
      const bigger = await m.attribute(inputs, ctx(bb, space), { budget: 40, seed: 1 });
      const again = await m.attribute(inputs, ctx(bb, space), { budget: 30, seed: 1 });
      expect(Array.from(again.values)).toEqual(Array.from(a.values));
      expect(Array.from(other.values)).not.toEqual(Array.from(a.values));
      expect(Array.from(bigger.values)).not.toEqual(Array.from(a.values));
      // concurrent calls with different seeds
      const [c1, c2] = await Promise.all([m.attribute(inputs, ctx(bb, space), { budget: 30, seed: 1 }), m.attribute(inputs, ctx(bb, space), { budget: 30, seed: 2 })]);
      expect(Array.from(c1.values)).toEqual(Array.from(a.values));
      expect(Array.from(c2.values)).toEqual(Array.from(other.values));
    }
  });
});
