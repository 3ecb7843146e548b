/**
 * SOP's generator logits: the factored form (products of width p, used when the per-feature value width p is below
 * the embedding width) and the E/Q/K form (p large) both equal γ·(E_q W_q)(E W_k)ᵀ with E = V W_p + bias + pos, in
 * values and in parameter gradients.
 */
import { describe, expect, it } from 'vitest';
import { SopModel } from '../src/models/sop.js';
import { Tensor, add, indexSelect, matmul, mul, scale, sum, transpose } from '../src/autograd/index.js';
import { Rng } from '../src/rng.js';
import type { FeatureSpace } from '../src/feature-space.js';
import type { Masker } from '../src/masker.js';
import type { Inputs } from '../src/inputs.js';
import type { Backbone } from '../src/backbone.js';

/** d features with p raw values each (x is [B, d·p]). */
function valuesSpace(d: number, p: number): FeatureSpace {
  return {
    kind: 'columns',
    numFeatures: d,
    grid: [d],
    featureNames: () => Array.from({ length: d }, (_, i) => `f${i}`),
    expand: (masks, rows) => ({ data: Float32Array.from(masks), shape: [rows.length, d] }),
    aggregate: (a) => a,
    featureValues: (inputs) => ({ data: inputs.x.data as Float32Array, shape: [inputs.x.shape[0], d, p] }),
  };
}
const noMasker: Masker = { name: 'none', apply: (inputs) => inputs };
const stub: Backbone = { name: 'stub', info: { outputDim: 3 }, capabilities: { vjp: false, hidden: false, embeddings: false }, forward: async () => ({ output: { data: new Float32Array(0), shape: [0, 3] } }) };

interface Internals {
  params: Record<string, Tensor>;
  gammaG: number;
  headLogits(h: number, qs: Int32Array, src: { values?: Tensor; embeddings?: Tensor }): Tensor;
}

function setup(d: number, p: number, embedDim: number, positionEmbedding: boolean) {
  const rng = new Rng(d * 100 + p);
  const x = new Float32Array(3 * d * p);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const inputs: Inputs = { x: { data: x, shape: [3, d * p] } };
  const sop = new SopModel({ backbone: stub, space: valuesSpace(d, p), masker: noMasker, task: 'classification', numOutputs: 3 }, inputs, { groups: 4, embedDim, positionEmbedding, seed: 5 });
  const internals = sop.generator as unknown as Internals;
  // non-trivial bias (initialised at 0)
  for (let i = 0; i < internals.params['proj.bias'].size; i++) internals.params['proj.bias'].data[i] = 0.3 * rng.normal();
  const V = new Tensor(x, [3, d, p]);
  return { internals, V, rng };
}

function reference(t: Internals, V: Tensor, qs: Int32Array): Tensor {
  let emb = add(matmul(V, t.params['proj.weight']), t.params['proj.bias']);
  if (t.params['pos']) emb = add(emb, t.params['pos']);
  const Q = matmul(indexSelect(emb, 1, qs), t.params['heads.0.query']);
  const K = matmul(emb, t.params['heads.0.key']);
  return scale(matmul(Q, transpose(K)), t.gammaG);
}

describe('SOP generator logits', () => {
  for (const [d, p, e, pos] of [
    [10, 1, 8, true],
    [10, 3, 8, false],
    [6, 20, 4, true],
    [6, 20, 4, false],
  ] as const) {
    it(`d = ${d}, p = ${p}, e = ${e}, position embedding ${pos}: values and parameter gradients match E·W_q·(E·W_k)ᵀ`, () => {
      const { internals: t, V, rng } = setup(d, p, e, pos);
      const qs = Int32Array.from([0, 2, 5, d - 1]);
      const cot = new Float32Array(3 * qs.length * d);
      for (let i = 0; i < cot.length; i++) cot[i] = rng.normal();
      const grads = (f: () => Tensor): { y: Float32Array; g: Record<string, Float32Array> } => {
        for (const q of Object.values(t.params)) q.grad = null;
        const y = f();
        sum(mul(y, new Tensor(cot, [...y.shape]))).backward();
        const g: Record<string, Float32Array> = {};
        for (const [n, q] of Object.entries(t.params)) g[n] = Float32Array.from(q.grad ?? new Float32Array(q.size));
        return { y: Float32Array.from(y.data), g };
      };
      const got = grads(() => t.headLogits(0, qs, { values: V }));
      const want = grads(() => reference(t, V, qs));
      const yScale = Math.max(...Array.from(want.y, Math.abs));
      for (let i = 0; i < want.y.length; i++) expect(Math.abs(got.y[i] - want.y[i])).toBeLessThan(1e-5 * yScale);
      for (const [n, gw] of Object.entries(want.g)) {
        const gScale = Math.max(1e-3, ...Array.from(gw, Math.abs));
        for (let i = 0; i < gw.length; i++) expect(Math.abs(got.g[n][i] - gw[i]), `${n}[${i}]`).toBeLessThan(1e-4 * gScale);
      }
    });
  }
});

describe('SOP generator logits over backbone embeddings', () => {
  // E_in = 8 against key width 8: the factored form (E_q·G)·Eᵀ with G = γ·W_q·W_kᵀ; E_in = 40 against 4: Q and K
  for (const [d, E, e] of [
    [10, 8, 8],
    [10, 40, 4],
  ] as const) {
    it(`d = ${d}, embeddings ${E} wide, key width ${e}: values (with and without grad) and gradients match γ·(E_q·W_q)·(E·W_k)ᵀ`, async () => {
      const { noGrad } = await import('../src/autograd/index.js');
      const rng = new Rng(d + E);
      const B = 3;
      const emb = new Tensor(Float32Array.from({ length: B * d * E }, () => rng.normal()), [B, d, E]);
      const bb: Backbone = { ...stub, info: { outputDim: 3, embeddingDim: E }, capabilities: { vjp: false, hidden: false, embeddings: true } };
      const inputs: Inputs = { x: { data: new Float32Array(B * d), shape: [B, d] } };
      const sop = new SopModel({ backbone: bb, space: valuesSpace(d, 1), masker: noMasker, task: 'classification', numOutputs: 3 }, inputs, { groups: 4, embedDim: e, embeddings: 'backbone', seed: 5 });
      const t = sop.generator as unknown as Internals;
      const qs = Int32Array.from([0, 3, 4, d - 1]);
      const ref = (): Tensor => scale(matmul(matmul(indexSelect(emb, 1, qs), t.params['heads.0.query']), transpose(matmul(emb, t.params['heads.0.key']))), t.gammaG);
      const cot = new Tensor(Float32Array.from({ length: B * qs.length * d }, () => rng.normal()), [B, qs.length, d]);
      const grads = (f: () => Tensor): { y: Float32Array; g: Float32Array[] } => {
        for (const q of Object.values(t.params)) q.grad = null;
        const y = f();
        sum(mul(y, cot)).backward();
        return { y: Float32Array.from(y.data), g: ['heads.0.query', 'heads.0.key'].map((n) => Float32Array.from(t.params[n].grad!)) };
      };
      const got = grads(() => t.headLogits(0, qs, { embeddings: emb }));
      const want = grads(ref);
      const inference = noGrad(() => t.headLogits(0, qs, { embeddings: emb })).data;
      const yScale = Math.max(...Array.from(want.y, Math.abs));
      for (let i = 0; i < want.y.length; i++) {
        expect(Math.abs(got.y[i] - want.y[i])).toBeLessThan(1e-5 * yScale);
        expect(Math.abs(inference[i] - want.y[i])).toBeLessThan(1e-5 * yScale);
      }
      want.g.forEach((gw, k) => {
        const gScale = Math.max(...Array.from(gw, Math.abs));
        for (let i = 0; i < gw.length; i++) expect(Math.abs(got.g[k][i] - gw[i])).toBeLessThan(1e-4 * gScale);
      });
    });
  }
});

describe('SOP generator with invalid features (padding)', () => {
  it('never picks an invalid feature while valid ones remain; inference (bias added in place) equals the graph path', async () => {
    const d = 10;
    const p = 2;
    const B = 4;
    const rng = new Rng(11);
    const x = Float32Array.from({ length: B * d * p }, () => rng.normal());
    // example b has its last 2·b features invalid
    const valid = new Float32Array(B * d).fill(1);
    for (let b = 0; b < B; b++) for (let j = d - 2 * b; j < d; j++) valid[b * d + j] = 0;
    const space: FeatureSpace = { ...valuesSpace(d, p), validFeatures: () => valid };
    const inputs: Inputs = { x: { data: x, shape: [B, d * p] } };
    const sop = new SopModel({ backbone: stub, space, masker: noMasker, task: 'classification', numOutputs: 3 }, inputs, { groups: 5, keep: 0.3, embedDim: 8, seed: 2 });
    const gen = sop.generator;
    const graph = await gen.generate(inputs, { groups: 5, keep: 0.3, grad: true });
    const inference = await gen.generate(inputs, { groups: 5, keep: 0.3 });
    expect(Array.from(inference.masks.data)).toEqual(Array.from(graph.masks.data));
    // the graph path and the inference kernels round differently (float32 sums in another order)
    inference.scales.data.forEach((c, i) => expect(Math.abs(c - graph.scales.data[i])).toBeLessThan(1e-6));
    for (let b = 0; b < B; b++)
      for (let g = 0; g < 5; g++) {
        const row = inference.masks.data.subarray((b * 5 + g) * d, (b * 5 + g + 1) * d);
        expect(row.reduce((a, v) => a + v, 0)).toBe(3);
        for (let j = 0; j < d; j++) if (valid[b * d + j] === 0) expect(row[j]).toBe(0);
      }
  });
});

describe('SOP generator inference in one kernel call, E/Q/K form', () => {
  for (const pos of [true, false]) {
    it(`projection embeddings built in the kernel's memory (position embedding ${pos}): masks, scales and attention equal the graph path's`, async () => {
      const { kernels } = await import('../src/kernels/index.js');
      const { vi } = await import('vitest');
      const [d, p, e, B] = [6, 20, 4, 3];
      const { internals } = setup(d, p, e, pos);
      const gen = internals as unknown as Internals & import('../src/group-generator.js').GroupGenerator;
      const rng = new Rng(7);
      const inputs: Inputs = { x: { data: Float32Array.from({ length: B * d * p }, () => rng.normal()), shape: [B, d * p] } };
      const spy = vi.spyOn(internals, 'headLogits');
      const fused = await gen.generate(inputs, { groups: 4, keep: 0.5 });
      // with the kernels, one call: no per-head logits through the general path
      if (kernels()) expect(spy).not.toHaveBeenCalled();
      else expect(spy).toHaveBeenCalled();
      const graph = await gen.generate(inputs, { groups: 4, keep: 0.5, grad: true });
      spy.mockRestore();
      expect(Array.from(fused.masks.data)).toEqual(Array.from(graph.masks.data));
      fused.scales.data.forEach((c, i) => expect(Math.abs(c - graph.scales.data[i])).toBeLessThan(1e-6));
      fused.attention!.data.forEach((a, i) => expect(Math.abs(a - graph.attention!.data[i])).toBeLessThan(1e-6));
      // the reference logits' softmax, in float64
      const L = reference(internals, new Tensor(inputs.x.data as Float32Array, [B, d, p]), (await gen.generate(inputs, { groups: 4, keep: 0.5 })).queries).data;
      for (let r = 0; r < L.length / d; r++) {
        const row = Array.from(L.subarray(r * d, (r + 1) * d));
        const mx = Math.max(...row);
        const ex = row.map((v) => Math.exp(v - mx));
        const s = ex.reduce((a, v) => a + v, 0);
        ex.forEach((v, j) => expect(Math.abs(v / s - fused.attention!.data[r * d + j])).toBeLessThan(1e-5));
      }
    });
  }
});
