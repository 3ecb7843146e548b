import { describe, expect, it } from 'vitest';
import { UserError } from '@sop/core';
import { agi, ampe, fresh, fullgrad, gradcam, gradient, inputXGradient, integratedGradients, mfaba } from '../src/index.js';
import { setBaselineKernelsEnabled } from '../src/kernels/index.js';
import { blendMasker, columnsSpace, ctx, maxAbsDiff, mlpModel, patchesSpace, rowBackbone, t, type RowModel } from './helpers.js';

const d = 5;
const C = 3;
const model = mlpModel(d, 8, C, 3);
const X = Float32Array.from([0.5, -1, 1.2, 0.3, -0.4, 1, 0.2, -0.7, 0.9, 0.1]);
const B = 2;
const row = (b: number): Float64Array => Float64Array.from(X.subarray(b * d, (b + 1) * d));
const argmax = (v: number[]): number => v.indexOf(Math.max(...v));
const softmax = (z: number[]): number[] => {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

describe('gradient methods', () => {
  it('gradient equals the analytic gradient of the predicted logit (and of its probability)', async () => {
    const a = await gradient.attribute({ x: t(X, [B, d]) }, ctx(rowBackbone(model), columnsSpace(d)));
    for (let b = 0; b < B; b++) {
      const c = argmax(model.f(row(b)));
      expect(a.targets[b]).toBe(c);
      const g = model.vjp(row(b), [0, 1, 2].map((j) => (j === c ? 1 : 0)));
      expect(maxAbsDiff(a.values.subarray(b * d, (b + 1) * d), g)).toBeLessThan(1e-5);
      // finite differences agree with the analytic vjp
      const h = 1e-4;
      for (let i = 0; i < d; i++) {
        const xp = row(b);
        const xm = row(b);
        xp[i] += h;
        xm[i] -= h;
        expect((model.f(xp)[c] - model.f(xm)[c]) / (2 * h)).toBeCloseTo(g[i], 4);
      }
    }
    expect(a.meta.gradients).toBe(B);
    const p = await gradient.attribute({ x: t(X, [B, d]) }, ctx(rowBackbone(model), columnsSpace(d)), { output: 'prob', target: 2 });
    for (let b = 0; b < B; b++) {
      const pr = softmax(model.f(row(b)));
      const g = model.vjp(row(b), pr.map((pj, j) => pr[2] * ((j === 2 ? 1 : 0) - pj)));
      expect(maxAbsDiff(p.values.subarray(b * d, (b + 1) * d), g)).toBeLessThan(1e-5);
    }
  });

  it('input-x-gradient is x ⊙ ∇f_c', async () => {
    const a = await inputXGradient.attribute({ x: t(X, [B, d]) }, ctx(rowBackbone(model), columnsSpace(d)), { target: [0, 1] });
    for (let b = 0; b < B; b++) {
      const g = model.vjp(row(b), [0, 1, 2].map((j) => (j === b ? 1 : 0)));
      expect(maxAbsDiff(a.values.subarray(b * d, (b + 1) * d), g.map((gi, i) => gi * X[b * d + i]))).toBeLessThan(1e-5);
    }
  });

  it('integrated gradients is complete: Σφ ≈ f_c(x) − f_c(x₀) (zero and mean baselines)', async () => {
    const a = await integratedGradients.attribute({ x: t(X, [B, d]) }, ctx(rowBackbone(model), columnsSpace(d)));
    expect(a.meta.gradients).toBe(B * 20);
    for (let b = 0; b < B; b++) {
      const c = a.targets[b];
      const sum = a.values.subarray(b * d, (b + 1) * d).reduce((s, v) => s + v, 0);
      expect(sum).toBeCloseTo(model.f(row(b))[c] - model.f(new Float64Array(d))[c], 4);
    }
    const mean = Float32Array.from([0.2, 0.1, -0.3, 0.5, 0]);
    for (const rule of ['gauss-legendre', 'middle'] as const) {
      const m = await integratedGradients.attribute({ x: t(X, [B, d]) }, ctx(rowBackbone(model), columnsSpace(d), blendMasker('mean', mean)), { baseline: 'mean', rule, budget: rule === 'middle' ? 200 : 20 });
      for (let b = 0; b < B; b++) {
        const c = m.targets[b];
        const sum = m.values.subarray(b * d, (b + 1) * d).reduce((s, v) => s + v, 0);
        expect(sum).toBeCloseTo(model.f(row(b))[c] - model.f(Float64Array.from(mean))[c], 3);
      }
    }
    // exlib compatibility: left Riemann mean gradient, no × (x − x₀)
    const r = await integratedGradients.attribute({ x: t(X, [1, d]) }, ctx(rowBackbone(model), columnsSpace(d)), { referenceCompat: true, budget: 4, target: 0 });
    const exp = new Array(d).fill(0);
    for (let k = 0; k < 4; k++) model.vjp(row(0).map((v) => (v * k) / 4), [1, 0, 0]).forEach((g, i) => (exp[i] += g / 4));
    expect(maxAbsDiff(r.values, exp)).toBeLessThan(1e-5);
  });

  it('throws a UserError naming the problem when the backbone has no gradients', async () => {
    const bb = rowBackbone(model, { withVjp: false, name: 'onnx-like' });
    for (const m of [gradient, inputXGradient, integratedGradients, gradcam, fullgrad, mfaba, agi, ampe]) {
      const err = await m.attribute({ x: t(X, [B, d]) }, ctx(bb, columnsSpace(d))).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as UserError).message).toMatch(/has no gradients/);
      expect((err as UserError).fix).toMatch(/black-box/);
    }
  });
});

/** Image model: x [1, 4, 4], 2×2 patches; A = [K=2, 2, 2], A_k = s_k·patch sums; out_c = Σ_k v_ck Σ tanh(A_k) + bias. */
function camModel(): RowModel & { A(x: Float64Array): number[] } {
  const s = [0.5, -0.8];
  const v = [[1, 2], [-1, 0.5]];
  const A = (x: Float64Array): number[] => {
    const out: number[] = [];
    for (let k = 0; k < 2; k++) for (let py = 0; py < 2; py++) for (let px = 0; px < 2; px++) {
      let sum = 0;
      for (let y = 0; y < 2; y++) for (let xx = 0; xx < 2; xx++) sum += x[(py * 2 + y) * 4 + px * 2 + xx];
      out.push(s[k] * sum);
    }
    return out;
  };
  const f = (x: Float64Array): number[] => {
    const a = A(x);
    return v.map((vc) => vc.reduce((acc, vk, k) => acc + vk * a.slice(k * 4, k * 4 + 4).reduce((q, ai) => q + Math.tanh(ai), 0), 0));
  };
  const gradA = (x: Float64Array, cot: ArrayLike<number>): number[] => {
    const a = A(x);
    return a.map((ai, idx) => {
      const k = Math.floor(idx / 4);
      return (cot[0] * v[0][k] + cot[1] * v[1][k]) * (1 - Math.tanh(ai) ** 2);
    });
  };
  return {
    n: 16,
    C: 2,
    f,
    A,
    vjp: (x, cot) => {
      const ga = gradA(x, cot);
      return Array.from({ length: 16 }, (_, i) => {
        const py = Math.floor(Math.floor(i / 4) / 2);
        const px = Math.floor((i % 4) / 2);
        return ga[py * 2 + px] * s[0] + ga[4 + py * 2 + px] * s[1];
      });
    },
    extra: { features: { f: A, shape: [2, 2, 2], grad: gradA } },
  };
}

describe('gradcam and fullgrad', () => {
  const m = camModel();
  const x = Float32Array.from({ length: 16 }, (_, i) => ((i * 37) % 11) / 10 - 0.3);
  const space = patchesSpace(1, 4, 4, 2);

  it('gradcam = ReLU(Σ_k mean(∂y/∂A_k)·A_k) on the feature grid', async () => {
    const a = await gradcam.attribute({ x: t(x, [1, 1, 4, 4]) }, ctx(rowBackbone(m), space), { output: 'logit', target: 0 });
    expect(a.meta.layer).toBe('features');
    const A = m.A(Float64Array.from(x));
    const G = m.extra!.features.grad(Float64Array.from(x), [1, 0]);
    const cam = [0, 1, 2, 3].map((i) => {
      let s = 0;
      for (let k = 0; k < 2; k++) s += ((G[k * 4] + G[k * 4 + 1] + G[k * 4 + 2] + G[k * 4 + 3]) / 4) * A[k * 4 + i];
      return Math.max(0, s);
    });
    expect(maxAbsDiff(a.values, cam)).toBeLessThan(1e-5);
  });

  it('fullgrad: minmax|x ⊙ ∇x| plus the bias-gradient map', async () => {
    const a = await fullgrad.attribute({ x: t(x, [1, 1, 4, 4]) }, ctx(rowBackbone(m), space), { target: 1 });
    const g = m.vjp(Float64Array.from(x), [0, 1]);
    const ig = g.map((gi, i) => Math.abs(gi * x[i]));
    const lo = Math.min(...ig);
    const hi = Math.max(...ig);
    const norm = ig.map((v) => (v - lo) / (hi - lo));
    const expected = [0, 0, 0, 0];
    norm.forEach((v, i) => (expected[Math.floor(Math.floor(i / 4) / 2) * 2 + Math.floor((i % 4) / 2)] += v));
    expect(maxAbsDiff(a.values, expected)).toBeLessThan(1e-5);
    const withBias = await fullgrad.attribute({ x: t(x, [1, 1, 4, 4]) }, ctx(rowBackbone(m), space), { target: 1, biasLayers: [{ output: 'features', bias: [0.1, -0.2] }] });
    const GA = m.extra!.features.grad(Float64Array.from(x), [0, 1]);
    const bm = GA.map((gv, idx) => Math.abs(gv * [0.1, -0.2][Math.floor(idx / 4)]));
    const blo = Math.min(...bm);
    const bhi = Math.max(...bm);
    const bn = bm.map((v) => (v - blo) / (bhi - blo));
    // a 2×2 map resized onto the 4×4 image and summed per 2×2 patch: each patch gets 4× its (smoothly resized) value;
    // the total mass is preserved by bilinear upsampling of a 2×2 map only approximately, so compare totals
    const mapSum = [0, 1, 2, 3].map((i) => bn[i] + bn[4 + i]);
    const extra = Array.from(withBias.values, (v, i) => v - expected[i]);
    expect(extra.reduce((s, v) => s + v, 0)).toBeCloseTo(4 * mapSum.reduce((s, v) => s + v, 0), 4);
    expect(extra.indexOf(Math.max(...extra))).toBe(mapSum.indexOf(Math.max(...mapSum)));
  });
});

describe('attack-path methods (mfaba, agi, ampe)', () => {
  it('mfaba: attributions sum to the drop of the target probability along the path (first order)', async () => {
    const bb = rowBackbone(model);
    const a = await mfaba.attribute({ x: t(X, [B, d]) }, ctx(bb, columnsSpace(d)), { budget: 200, epsilon: 0.002 });
    expect(a.meta.steps).toBeLessThanOrEqual(200);
    for (let b = 0; b < B; b++) {
      const sum = a.values.subarray(b * d, (b + 1) * d).reduce((s, v) => s + v, 0);
      expect(sum).toBeGreaterThan(0);
      // the path goes until the label flips: the prob drops at least to the runner-up's level
      const p = softmax(model.f(row(b)));
      const pc = p[a.targets[b]];
      expect(sum).toBeLessThanOrEqual(pc + 1e-3);
      expect(sum).toBeGreaterThan(pc - 0.75);
    }
    expect(bb.vjpRows).toBe(a.meta.gradients);
  });

  it('agi and ampe are finite, deterministic by seed and count their rows', async () => {
    const bb = rowBackbone(model);
    const g = await agi.attribute({ x: t(X, [B, d]) }, ctx(bb, columnsSpace(d)));
    expect(g.values.every(Number.isFinite)).toBe(true);
    expect(g.meta.evaluations).toBe(bb.forwardRows);
    expect(g.meta.gradients).toBe(bb.vjpRows);
    expect(bb.vjpRows).toBeLessThanOrEqual(2 * 2 * 4 * B);
    const a1 = await ampe.attribute({ x: t(X, [B, d]) }, ctx(rowBackbone(model), columnsSpace(d)), { seed: 4 });
    const a2 = await ampe.attribute({ x: t(X, [B, d]) }, ctx(rowBackbone(model), columnsSpace(d)), { seed: 4 });
    expect(Array.from(a1.values)).toEqual(Array.from(a2.values));
    expect(a1.meta.gradients).toBe(20 * B);
    expect(a1.values.every(Number.isFinite)).toBe(true);
    for (let b = 0; b < B; b++) expect(a1.values.subarray(b * d, (b + 1) * d).reduce((s, v) => s + v, 0)).toBeGreaterThan(0);
  });

  it('ampe: the WebAssembly path (noise, mean, blur, step) gives the JavaScript values bit for bit', async () => {
    const img = mlpModel(2 * 6 * 4, 8, C, 7);
    const xi = Float32Array.from({ length: 3 * 48 }, (_, i) => Math.sin(i * 0.37));
    const cases = [
      { inputs: { x: t(xi, [3, 2, 6, 4]) }, model: img, space: patchesSpace(2, 6, 4, 2), options: { seed: 9, maxBatch: 7 } },
      { inputs: { x: t(xi, [3, 2, 6, 4]) }, model: img, space: patchesSpace(2, 6, 4, 2), options: { seed: 2, tiKernel: 1, steps: 3 } },
      { inputs: { x: t(X, [B, d]) }, model, space: columnsSpace(d), options: { seed: 4 } },
    ];
    for (const c of cases) {
      const run = async (on: boolean): Promise<Float32Array> => {
        const prev = setBaselineKernelsEnabled(on);
        try {
          return (await ampe.attribute(c.inputs, ctx(rowBackbone(c.model), c.space), c.options)).values;
        } finally {
          setBaselineKernelsEnabled(prev);
        }
      };
      const js = await run(false);
      const wasm = await run(true);
      expect(js.every(Number.isFinite)).toBe(true);
      expect(Array.from(wasm)).toEqual(Array.from(js));
    }
  });
});

describe('fresh', () => {
  it('reads the CLS attention row averaged over heads, dropping CLS', async () => {
    const dd = 4;
    const att = (x: Float64Array): number[] => {
      const out: number[] = [];
      for (let h = 0; h < 2; h++) for (let tt = 0; tt <= dd; tt++) out.push(tt === 0 ? 0.5 : Math.abs(x[tt - 1]) * (h + 1));
      return out;
    };
    const m: RowModel = { n: dd, C: 2, f: (x) => [x[0], x[1]], vjp: () => [], extra: { attention: { f: att, shape: [2, dd + 1], grad: () => [] } } };
    const a = await fresh.attribute({ x: t([1, -2, 3, 0.5], [1, dd]) }, ctx(rowBackbone(m, { withVjp: false }), columnsSpace(dd)));
    expect(Array.from(a.values)).toEqual([1.5, 3, 4.5, 0.75]);
    expect(a.meta.evaluations).toBe(1);
  });
});

describe('gradcam on token states, fullgrad bias by parameter name, progress', () => {
  it('gradcam reads [B, T, K] token states, dropping a CLS token', async () => {
    const dd = 4;
    const K = 2;
    // states: token t (0 = CLS) has [x_{t-1}, 2·x_{t-1}]; out = Σ_t (s_t0 − 0.5·s_t1²)
    const S = (x: Float64Array): number[] => [0, 0, ...Array.from(x).flatMap((v) => [v, 2 * v])];
    const m: RowModel = {
      n: dd,
      C: 1,
      f: (x) => [S(x).reduce((a, v, i) => a + (i % 2 === 0 ? v : -0.5 * v * v), 0)],
      vjp: () => new Array(dd).fill(0),
      extra: { states: { f: S, shape: [dd + 1, K], grad: (x, cot) => S(x).map((v, i) => cot[0] * (i % 2 === 0 ? 1 : -v)) } },
    };
    const x = Float64Array.from([1, -1, 2, 0.5]);
    const a = await gradcam.attribute({ x: t(Float32Array.from(x), [1, dd]) }, ctx(rowBackbone(m), columnsSpace(dd)), { layer: 'states' });
    const st = S(x);
    const g = m.extra!.states.grad(x, [1]);
    const alpha = [0, 1].map((k) => [1, 2, 3, 4].reduce((s, tt) => s + g[tt * K + k], 0) / dd);
    const cam = [1, 2, 3, 4].map((tt) => Math.max(0, alpha[0] * st[tt * K] + alpha[1] * st[tt * K + 1]));
    expect(maxAbsDiff(a.values, cam)).toBeLessThan(1e-5);
  });

  it('fullgrad takes the bias from backbone.parameters() by name', async () => {
    const m = camModel();
    const bb = rowBackbone(m);
    bb.parameters = () => ({ 'conv.bias': t([0.1, -0.2], [2]) });
    const x = Float32Array.from({ length: 16 }, (_, i) => ((i * 37) % 11) / 10 - 0.3);
    const space = patchesSpace(1, 4, 4, 2);
    const byName = await fullgrad.attribute({ x: t(x, [1, 1, 4, 4]) }, ctx(bb, space), { target: 1, biasLayers: [{ output: 'features', bias: 'conv.bias' }] });
    const byValue = await fullgrad.attribute({ x: t(x, [1, 1, 4, 4]) }, ctx(bb, space), { target: 1, biasLayers: [{ output: 'features', bias: [0.1, -0.2] }] });
    expect(Array.from(byName.values)).toEqual(Array.from(byValue.values));
    await expect(fullgrad.attribute({ x: t(x, [1, 1, 4, 4]) }, ctx(bb, space), { biasLayers: [{ output: 'features', bias: 'nope' }] })).rejects.toThrow(/bias/);
  });

  it('reports progress and ends at total', async () => {
    const calls: [number, number][] = [];
    await integratedGradients.attribute({ x: t(X, [B, d]) }, ctx(rowBackbone(model), columnsSpace(d)), { onProgress: (a, b) => calls.push([a, b]) });
    expect(calls[calls.length - 1]).toEqual([B, B]);
  });
});
