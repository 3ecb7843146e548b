/**
 * The WebAssembly SIMD kernels (packages/core/wasm/kernels.c) against float64 references and against the JavaScript
 * paths they replace; and the committed module against its source.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  kernels,
  setKernelsEnabled,
  topkMassKernel,
  topkMaskKernel,
  sparsemaxKernel,
  maskRowsKernel,
  KernelBuffer,
  matmulRowsKernel,
  genLogitsKernel,
  genTopkKernel,
  selectSparsemaxKernel,
  sopCombineKernel,
  selectCombineKernel,
  padColumns,
  matmulPaddedKernel,
  sparsemaxCombineKernel,
  uninitF32,
  DenseStack,
  type Kernels,
} from '../src/kernels/index.js';
import { KERNELS_SOURCE_SHA256 } from '../src/kernels/kernels-wasm.js';
import { Tensor, noGrad, sparsemax, topkMask, add, matmul, relu } from '../src/autograd/index.js';
import { Rng } from '../src/rng.js';
import { PatchesSpace } from '../src/features/patches.js';
import { ColumnsSpace } from '../src/features/columns.js';
import { zeroMasker } from '../src/maskers/zero.js';
import { MeanMasker } from '../src/maskers/mean.js';
import { SopModel } from '../src/models/sop.js';
import { SparsemaxGroupSelector } from '../src/models/sparsemax-selector.js';
import { MlpBackbone } from '../src/models/mlp.js';
import type { Inputs } from '../src/inputs.js';

const K = (): Kernels => {
  const k = kernels();
  if (!k) throw new Error('this Node has no WebAssembly SIMD');
  return k;
};

/** Run f with the kernels off (the JavaScript paths). */
function withoutKernels<T>(f: () => T): T {
  const prev = setKernelsEnabled(false);
  try {
    return f();
  } finally {
    setKernelsEnabled(prev);
  }
}

async function withoutKernelsAsync<T>(f: () => Promise<T>): Promise<T> {
  const prev = setKernelsEnabled(false);
  try {
    return await f();
  } finally {
    setKernelsEnabled(prev);
  }
}

/** Reference top-k indices: by value (desc, or asc when !largest), ties to the lower index, NaN last. */
function refTopk(v: number[], k: number, largest: boolean): Set<number> {
  const key = (x: number): number => (Number.isNaN(x) ? -Infinity : largest ? x : -x);
  const idx = v.map((_, i) => i).sort((i, j) => key(v[j]) - key(v[i]) || i - j);
  return new Set(idx.slice(0, k));
}

/** Tests of the kernels themselves need them (SOP_WASM=0 runs the suite on the JavaScript paths only). */
const itK = kernels() ? it : it.skip;

describe('WebAssembly kernels', () => {
  it('the committed module was built from the committed source (rebuild: node tools/wasm/build-kernels.mjs core)', () => {
    const src = readFileSync(new URL('../wasm/kernels.c', import.meta.url));
    expect(createHash('sha256').update(src).update(readFileSync(new URL('../wasm/simd-math.h', import.meta.url))).digest('hex')).toBe(KERNELS_SOURCE_SHA256);
    if (process.env.SOP_WASM !== '0') expect(kernels()).not.toBeNull(); // Node 20 has WebAssembly SIMD
  });

  itK('exp: within 2.5e-7 relative of e^x on [-87, 88]; 0 below the float32 range; NaN stays NaN', () => {
    const k = K();
    const xs = new Float32Array(20001).map((_, i) => -87 + (175 * i) / 20000);
    k.reset();
    const px = k.put(xs);
    const py = k.alloc(xs.byteLength);
    k.exports.exp_f32(px, py, xs.length);
    const y = k.read(py, xs.length);
    let worst = 0;
    xs.forEach((x, i) => (worst = Math.max(worst, Math.abs(y[i] - Math.exp(x)) / Math.exp(x))));
    expect(worst).toBeLessThan(2.5e-7);
    const edge = Float32Array.from([-100, -1e30, -Infinity, NaN, 0]);
    k.reset();
    const pe = k.put(edge);
    const pf = k.alloc(edge.byteLength);
    k.exports.exp_f32(pe, pf, edge.length);
    const f = k.read(pf, edge.length);
    expect(Array.from(f.subarray(0, 3))).toEqual([0, 0, 0]);
    expect(f[3]).toBeNaN();
    expect(f[4]).toBe(1);
  });

  itK('topk mass: softmax within 1e-6, masks exactly the reference top-k (ties, NaN, smallest, both selection paths), c = 2·Σ_top a − 1', () => {
    const k = K();
    const rng = new Rng(5);
    for (const [len, kk] of [[16, 4], [16, 0], [16, 16], [7, 3], [20, 6], [64, 12], [40, 15], [50, 25], [200, 37], [33, 9], [1, 1], [64, 13], [64, 5], [64, 16], [32, 8], [48, 16], [28, 7], [36, 9], [24, 16], [60, 14], [20, 5]]) {
      for (const largest of [true, false]) {
        const rows = 5;
        // coarse values: many exact ties
        const L = Float32Array.from({ length: rows * len }, () => Math.round(rng.normal() * 4) / 2);
        if (len > 8) L[3] = NaN; // a NaN logit makes its row NaN: every value then ties, the lowest indices win
        const { a, M, c } = topkMassKernel(k, L, len, kk, largest);
        for (let r = 0; r < rows; r++) {
          const row = Array.from(L.subarray(r * len, (r + 1) * len));
          const mx = Math.max(...row.filter((v) => !Number.isNaN(v)));
          const e = row.map((v) => Math.exp(v - mx));
          const s = e.reduce((x, y) => x + y, 0);
          const ref = e.map((v) => v / s);
          const got = Array.from(a.subarray(r * len, (r + 1) * len));
          if (row.some(Number.isNaN)) expect(got.every(Number.isNaN)).toBe(true);
          else got.forEach((v, i) => expect(Math.abs(v - ref[i])).toBeLessThanOrEqual(1e-6 * ref[i] + 1e-37));
          // masks rank the kernel's own float32 attention (ties included) exactly as the reference order does
          const want = refTopk(got, kk, largest);
          const mask = Array.from(M.subarray(r * len, (r + 1) * len));
          mask.forEach((v, i) => expect(v).toBe(want.has(i) ? 1 : 0));
          const mass = got.reduce((acc, v, i) => acc + (want.has(i) ? v : 0), 0);
          if (!row.some(Number.isNaN)) expect(Math.abs(c[r] - (2 * mass - 1))).toBeLessThan(1e-6);
        }
        // the plain top-k mask kernel agrees with the JavaScript op
        const vals = Float32Array.from({ length: rows * len }, () => Math.round(rng.normal() * 3));
        const jsMask = withoutKernels(() => topkMask(new Tensor(vals, [rows, len]), kk, -1, largest).data);
        expect(Array.from(topkMaskKernel(k, vals, len, kk, largest))).toEqual(Array.from(jsMask));
      }
    }
  });

  itK('topk mass: bit-identical to a float64 model of the kernel (exp_f32, sums in its order; four-row and general paths)', () => {
    const k = K();
    const rng = new Rng(21);
    const expF32 = (xs: Float32Array): Float32Array => {
      k.reset();
      const px = k.put(xs);
      const py = k.alloc(xs.byteLength);
      k.exports.exp_f32(px, py, xs.length);
      return k.read(py, xs.length);
    };
    const bits = (v: number): number => new Uint32Array(Float32Array.of(v).buffer)[0];
    for (const [len, kk] of [[16, 4], [16, 1], [16, 15], [8, 3], [4, 2], [20, 6], [64, 12], [64, 32], [12, 11], [36, 33], [10, 3], [16, 16], [64, 13], [48, 7], [28, 16]]) {
      for (const largest of [true, false]) {
        for (const rows of [1, 3, 4, 9]) {
          const coarse = rng.next() < 0.5;
          const L = Float32Array.from({ length: rows * len }, () => (coarse ? Math.round(rng.normal() * 4) / 2 : rng.normal() * 3));
          if (rows > 2) L[len + 1] = NaN; // a NaN row in a block: that block's softmax takes the general path
          if (rows > 3) L[3 * len] = -200; // below exp's range
          const { a, M, c } = topkMassKernel(k, L, len, kk, largest);
          for (let r = 0; r < rows; r++) {
            const row = L.subarray(r * len, (r + 1) * len);
            if (row.some(Number.isNaN)) continue;
            const mx = Math.max(...row);
            const e = expF32(row.map((v) => Math.fround(v - mx)));
            const v4 = len - (len % 4);
            let acc0 = 0;
            let acc1 = 0;
            for (let i = 0; i < v4; i += 4) {
              acc0 += e[i] + e[i + 2];
              acc1 += e[i + 1] + e[i + 3];
            }
            let s = acc0 + acc1;
            for (let i = v4; i < len; i++) s += e[i];
            const inv = Math.fround(1 / s);
            const want = e.map((v) => Math.fround(v * inv));
            const sel = refTopk(Array.from(want), kk, largest);
            const q = [0, 0, 0, 0];
            for (let i = 0; i < v4; i++) q[i % 4] += sel.has(i) ? want[i] : 0;
            let mass = q[0] + q[2] + (q[1] + q[3]);
            for (let i = v4; i < len; i++) mass += sel.has(i) ? want[i] : 0;
            for (let i = 0; i < len; i++) {
              expect(bits(a[r * len + i])).toBe(bits(want[i]));
              expect(M[r * len + i]).toBe(sel.has(i) ? 1 : 0);
            }
            expect(bits(c[r])).toBe(bits(Math.fround(2 * Math.fround(mass) - 1)));
          }
        }
      }
    }
  });

  itK('generator top-k: the same masks and scales without the attention (four-row and general paths)', () => {
    const k = K();
    const rng = new Rng(8);
    for (const [B, d, p, kk] of [[5, 16, 4, 4], [3, 10, 3, 3], [2, 16, 4, 16], [4, 12, 2, 5]]) {
      const qs = Int32Array.from([0, 3, Math.min(9, d - 1)]);
      const m = qs.length;
      const V = new Float32Array(B * d * p).map(() => rng.normal());
      const o = { V, B, d, p, qs, G: new Float32Array(p * p).map(() => rng.normal()), aBk: new Float32Array(m * p).map(() => rng.normal()), Abk: new Float32Array(p * d).map(() => rng.normal()), abk: new Float32Array(m * d).map(() => rng.normal()), abkCols: d };
      for (const largest of [true, false]) {
        const full = genTopkKernel(k, o, kk, largest, true);
        const bare = genTopkKernel(k, o, kk, largest, false);
        expect(bare.a).toBeUndefined();
        expect(Array.from(bare.M)).toEqual(Array.from(full.M));
        expect(Array.from(bare.c)).toEqual(Array.from(full.c));
        const ref = topkMassKernel(k, genLogitsKernel(k, o), d, kk, largest);
        expect(Array.from(full.a!)).toEqual(Array.from(ref.a));
        expect(Array.from(full.M)).toEqual(Array.from(ref.M));
        expect(Array.from(full.c)).toEqual(Array.from(ref.c));
      }
    }
  });

  itK('select + combine in one call: the same values as the two kernels (output keys and other keys)', () => {
    const k = K();
    const rng = new Rng(12);
    for (const [B, m, kk, C] of [[3, 16, 10, 10], [2, 5, 6, 3], [1, 7, 4, 13]]) {
      const z = new Float32Array(B * m * C).map(() => rng.normal());
      const keys = kk === C ? z : new Float32Array(B * m * kk).map(() => rng.normal());
      const u = new Float32Array(kk * C).map(() => rng.normal());
      const scales = new Float32Array(B * m).map(() => rng.normal());
      const r = selectCombineKernel(k, keys, B, m, kk, u, C, z, scales);
      const alpha = selectSparsemaxKernel(k, keys, B, m, kk, u, C);
      const c = sopCombineKernel(k, z, alpha, scales, B, m, C);
      expect(Array.from(r.weights)).toEqual(Array.from(alpha));
      expect(Array.from(r.scaled)).toEqual(Array.from(c.scaled));
      expect(Array.from(r.contributions)).toEqual(Array.from(c.contributions));
      expect(Array.from(r.output)).toEqual(Array.from(c.output));
    }
  });

  itK('generator top-k from feature values gathered in WebAssembly (featureValueIndex): the same as from featureValues', () => {
    const k = K();
    const rng = new Rng(16);
    const cases: [PatchesSpace | ColumnsSpace, number[]][] = [
      [new PatchesSpace([2, 7, 6], [3, 4]), [3, 2, 7, 6]], // channels, partial edge patches (padded values)
      [new PatchesSpace([1, 8, 8], [2, 2]), [5, 1, 8, 8]],
      [new ColumnsSpace([10]), [4, 10]],
    ];
    for (const [space, shape] of cases) {
      const x = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => rng.normal());
      const inputs: Inputs = { x: { data: x, shape } };
      const fv = space.featureValues(inputs);
      const index = space.featureValueIndex(inputs)!;
      const [B, d, p] = fv.shape;
      const row = x.length / B;
      expect(index.length).toBe(d * p);
      for (let b = 0; b < B; b++) for (let t = 0; t < d * p; t++) expect(fv.data[b * d * p + t]).toBe(index[t] >= 0 ? x[b * row + index[t]] : 0);
      const qs = Int32Array.from([0, Math.min(5, d - 1), d - 1]);
      const m = qs.length;
      const o = { B, d, p, qs, G: new Float32Array(p * p).map(() => rng.normal()), aBk: new Float32Array(m * p).map(() => rng.normal()), Abk: new Float32Array(p * d).map(() => rng.normal()), abk: new Float32Array(m * d).map(() => rng.normal()), abkCols: d };
      const kk = Math.max(1, Math.floor(d / 4));
      const plain = genTopkKernel(k, { ...o, V: fv.data }, kk, true, true);
      const gathered = genTopkKernel(k, { ...o, V: { x, index } }, kk, true, true);
      for (const name of ['a', 'M', 'c'] as const) expect(Array.from(gathered[name]!)).toEqual(Array.from(plain[name]!));
    }
    // a space whose featureValues is overridden describes no gather
    class Scaled extends PatchesSpace {
      override featureValues(inputs: Inputs) {
        const v = super.featureValues(inputs);
        return { data: v.data.map((t) => 2 * t), shape: v.shape };
      }
    }
    expect(new Scaled([1, 8, 8], [2, 2]).featureValueIndex({ x: { data: new Float32Array(64), shape: [1, 1, 8, 8] } })).toBeUndefined();
  });

  itK('select + combine from scores computed in row blocks (padded u): the same values as select + combine in one call', () => {
    const k = K();
    const rng = new Rng(13);
    for (const [B, m, kk, C, block] of [[4, 20, 32, 10, 16], [3, 7, 9, 3, 5], [2, 6, 5, 17, 4], [1, 9, 12, 16, 9], [2, 5, 8, 4, 3]]) {
      const z = new Float32Array(B * m * C).map(() => rng.normal());
      const keys = new Float32Array(B * m * kk).map(() => rng.normal());
      const u = new Float32Array(kk * C).map(() => rng.normal());
      const scales = new Float32Array(B * m).map(() => rng.normal());
      const whole = selectCombineKernel(k, keys, B, m, kk, u, C, z, scales);
      const uT = padColumns(u, kk, C);
      expect(uT.length).toBe(C > 16 ? kk * C : kk * ((C + 3) & ~3));
      const S = new Float32Array(B * m * C);
      for (let r = 0; r < B * m; r += block) {
        const n = Math.min(block, B * m - r);
        matmulPaddedKernel(k, keys.subarray(r * kk, (r + n) * kk), n, kk, uT, C, S, r * C);
      }
      // the scores are the row products of matmul_rows, bit for bit
      expect(Array.from(S)).toEqual(Array.from(matmulRowsKernel(k, keys, B * m, kk, u, C)));
      const r = sparsemaxCombineKernel(k, S, B, m, C, z, scales);
      for (const name of ['weights', 'scaled', 'contributions', 'output'] as const) expect(Array.from(r[name])).toEqual(Array.from(whole[name]));
    }
  });

  itK('combine: float32 products and float64 sums over groups per class, bit for bit (vector and scalar classes)', () => {
    const k = K();
    const rng = new Rng(14);
    for (const [B, m, C] of [[3, 5, 10], [2, 4, 1], [2, 3, 4], [1, 6, 13], [2, 2, 3]]) {
      const z = new Float32Array(B * m * C).map(() => rng.normal() * 3);
      const alpha = new Float32Array(B * m * C).map(() => rng.next());
      const scales = new Float32Array(B * m).map(() => rng.normal());
      const r = sopCombineKernel(k, z, alpha, scales, B, m, C);
      for (let b = 0; b < B; b++) {
        for (let c = 0; c < C; c++) {
          let acc = 0;
          for (let j = 0; j < m; j++) {
            const o = (b * m + j) * C + c;
            const v = Math.fround(z[o] * scales[b * m + j]);
            const w = Math.fround(alpha[o] * v);
            expect(r.scaled[o]).toBe(v);
            expect(r.contributions[o]).toBe(w);
            acc += w;
          }
          expect(r.output[b * C + c]).toBe(Math.fround(acc));
        }
      }
    }
  });

  itK('dense layers: bit-identical to gemm + add + relu op by op (column panels of 1–12, row remainders, NaN), close to float64', () => {
    const rng = new Rng(21);
    for (const [n, k0, N1, N2] of [[1, 8, 12, 1], [2, 9, 13, 7], [3, 16, 24, 11], [4, 30, 5, 2], [5, 64, 37, 10], [9, 12, 256, 3], [64, 64, 256, 10]]) {
      const X = Float32Array.from({ length: n * k0 }, () => rng.normal());
      if (n > 2) X[k0 + 1] = NaN; // a NaN row: relu gives +0 where the product is NaN, as op by op
      const W1 = Float32Array.from({ length: k0 * N1 }, () => rng.normal() * 0.3);
      const b1 = Float32Array.from({ length: N1 }, () => rng.normal() * 0.1);
      const W2 = Float32Array.from({ length: N1 * N2 }, () => rng.normal() * 0.3);
      const b2 = Float32Array.from({ length: N2 }, () => rng.normal() * 0.1);
      const stack = DenseStack.create([{ W: W1, b: b1, k: k0, N: N1, act: 1 }, { W: W2, b: b2, k: N1, N: N2, act: 0 }])!;
      const [h, y] = stack.run(X, n, [0, 1]);
      // a second call (weights kept in the instance) and an output array given by the caller: the same values
      const into = new Float32Array(n * N2);
      expect(stack.run(X, n, [1], [into])[0]).toBe(into);
      expect(Array.from(into)).toEqual(Array.from(y));
      const ref = noGrad(() => {
        const hr = relu(add(matmul(new Tensor(X, [n, k0]), new Tensor(W1, [k0, N1])), new Tensor(b1, [N1])));
        return { h: hr.data, y: add(matmul(hr, new Tensor(W2, [N1, N2])), new Tensor(b2, [N2])).data };
      });
      if (n * k0 * N1 >= 2048 && n * N1 * N2 >= 2048) {
        // where the op path runs the SIMD gemm (one K block), the same operations in the same order
        expect(Array.from(h)).toEqual(Array.from(ref.h));
        expect(Array.from(y)).toEqual(Array.from(ref.y));
      }
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < N1; j++) {
          let s = 0;
          for (let q = 0; q < k0; q++) s += X[i * k0 + q] * W1[q * N1 + j];
          const v = s + b1[j];
          expect(h[i * N1 + j]).toBeCloseTo(v > 0 ? v : 0, 4); // NaN > 0 is false: 0
        }
      }
    }
  });

  it('a frozen ReLU MLP gives the same bits with and without the kernels (hidden state and output)', async () => {
    const rng = new Rng(5);
    for (const [n, d, hidden] of [[64, 64, [256, 256]], [7, 10, [13, 9]], [3, 4, [16]], [1, 20, [40, 30, 12]]] as Array<[number, number, number[]]>) {
      const mlp = new MlpBackbone({ inputDim: d, outputDim: 3, hidden, seed: 3 });
      mlp.setTrainable(false);
      const x: Inputs = { x: { data: Float32Array.from({ length: n * d }, () => rng.normal()), shape: [n, d] } };
      const on = await mlp.forward(x, { outputs: ['hidden'] });
      const off = await withoutKernelsAsync(() => mlp.forward(x, { outputs: ['hidden'] }));
      expect(on.output.shape).toEqual([n, 3]);
      expect(on.hidden!.shape).toEqual([n, hidden[hidden.length - 1]]);
      expect(Array.from(on.output.data as Float32Array)).toEqual(Array.from(off.output.data as Float32Array));
      expect(Array.from(on.hidden!.data as Float32Array)).toEqual(Array.from(off.hidden!.data as Float32Array));
      // destinations given by the caller (ForwardOptions.into): written and returned as the outputs, same values
      const into = { output: new Float32Array(n * 3), hidden: new Float32Array(n * hidden[hidden.length - 1]) };
      const got = await mlp.forward(x, { outputs: ['hidden'], into });
      if (n === 64 && kernels()) {
        // (the kernel path: every layer has k ≥ 8 and ≥ 2048 multiply-adds; SOP_WASM=0 runs op by op)
        expect(got.output.data).toBe(into.output);
        expect(got.hidden!.data).toBe(into.hidden);
      }
      expect(Array.from(got.output.data as Float32Array)).toEqual(Array.from(off.output.data as Float32Array));
      expect(Array.from(got.hidden!.data as Float32Array)).toEqual(Array.from(off.hidden!.data as Float32Array));
    }
  });

  it('uninitialised result arrays own their whole buffer (large) or are plain arrays (small)', () => {
    for (const n of [0, 5, 8191, 8192, 100000]) {
      const a = uninitF32(n);
      expect(a.length).toBe(n);
      expect(a.byteOffset).toBe(0);
      expect(a.buffer.byteLength).toBe(4 * n);
    }
  });

  itK('sparsemax: bit-identical to the JavaScript op (column pairs, single columns, long columns), on the simplex, closed form for a 2-vector', () => {
    const k = K();
    const rng = new Rng(9);
    for (const [outer, len, inner] of [[3, 16, 10], [2, 5, 1], [1, 80, 3], [4, 1, 2], [2, 64, 7], [3, 9, 4], [2, 16, 8], [2, 12, 13], [1, 3, 6]]) {
      const z = Float32Array.from({ length: outer * len * inner }, () => rng.normal() * 2);
      const got = sparsemaxKernel(k, z, outer, len, inner);
      const ref = withoutKernels(() => noGrad(() => sparsemax(new Tensor(z, [outer, len, inner]), 1).data));
      expect(Array.from(got)).toEqual(Array.from(ref)); // same float64 operations in the same order
      for (let o = 0; o < outer; o++) {
        for (let t = 0; t < inner; t++) {
          let s = 0;
          for (let j = 0; j < len; j++) s += got[(o * len + j) * inner + t];
          expect(s).toBeCloseTo(1, 6);
        }
      }
    }
    // z = (0.3, 0): τ = (0.3 − 1)/2 = −0.35 → (0.65, 0.35); z = (2, 0): (1, 0)
    expect(Array.from(sparsemaxKernel(k, Float32Array.from([0.3, 0, 2, 0]), 2, 2, 1))).toEqual([Math.fround(0.65), Math.fround(0.35), 1, 0]);
  });

  itK('masked rows: bit-identical to the JavaScript blends (zero and mean maskers; patches with channels and partial patches; columns)', () => {
    const rng = new Rng(3);
    const patches = new PatchesSpace([2, 7, 6], [3, 2]);
    const px = new Float32Array(3 * 84).map(() => rng.normal());
    const pInputs: Inputs = { x: { data: px, shape: [3, 2, 7, 6] } };
    const columns = new ColumnsSpace([11]);
    const cx = new Float32Array(3 * 11).map(() => rng.normal());
    const cInputs: Inputs = { x: { data: cx, shape: [3, 11] } };
    // one channel (the fused path), a feature grid narrower than a SIMD vector (scalar expansion), hw not a multiple of 4
    const gray = new PatchesSpace([1, 6, 7], [2, 2]);
    const gInputs: Inputs = { x: { data: new Float32Array(3 * 42).map(() => rng.normal()), shape: [3, 1, 6, 7] } };
    const tiny = new PatchesSpace([1, 4, 4], [2, 4]);
    const tInputs: Inputs = { x: { data: new Float32Array(3 * 16).map(() => rng.normal()), shape: [3, 1, 4, 4] } };
    // three channels, patches 4 wide (quads repeated down each patch: one expansion per distinct quad) with a partial
    // patch column and hw = 90 not a multiple of 4
    const rgb = new PatchesSpace([3, 9, 10], [3, 4]);
    const rInputs: Inputs = { x: { data: new Float32Array(3 * 270).map(() => rng.normal()), shape: [3, 3, 9, 10] } };
    for (const [space, inputs, row] of [[patches, pInputs, 84], [columns, cInputs, 11], [gray, gInputs, 42], [tiny, tInputs, 16], [rgb, rInputs, 270]] as const) {
      const d = space.numFeatures;
      // all examples; a span from the second to the last; the middle example alone (only the span of x's rows that
      // the chunk reads is copied into the kernel's memory, its indices rebased)
      for (const rows of [[2, 0, 1, 1, 2, 0, 0], [2, 1, 1, 2], [1]]) {
        const masks = new Float32Array(rows.length * d).map((_, i) => (i % 3 === 0 ? 1 : i % 5 === 0 ? 0.25 : 0));
        for (const masker of [zeroMasker, new MeanMasker(new Float32Array(row).map((_, i) => Math.sin(i) * 3))]) {
          const js = withoutKernels(() => masker.apply(inputs, masks, rows, space).x.data as Float32Array);
          const wasm = masker.apply(inputs, masks, rows, space).x.data as Float32Array;
          expect(Array.from(wasm)).toEqual(Array.from(js));
        }
      }
    }
    // the raw kernel: out = x[rows] ⊙ M through the map
    const k = K();
    const out = maskRowsKernel(k, Float32Array.from([1, 2, 3, 4]), Int32Array.from([1, 0]), Float32Array.from([1, 0, 0, 1]), 2, Int32Array.from([0, 1]), 1, undefined, new Float32Array(4));
    expect(Array.from(out)).toEqual([3, 0, 0, 2]);
  });

  itK('masked rows written in place into a kernel buffer: the values of the shared-instance path; a call that grows its memory returns the view to use', () => {
    const k = K();
    const rng = new Rng(29);
    const space = new PatchesSpace([3, 8, 8], [4, 4]);
    const d = space.numFeatures;
    const masks = new Float32Array(5 * d).map((_, i) => (i % 3 === 0 ? 1 : i % 4 === 1 ? 0.5 : 0));
    const n = 5 * 3 * 64;
    const kb = KernelBuffer.create()!;
    for (const [B, base] of [[3, undefined], [3, new Float32Array(192).map((_, i) => Math.cos(i))], [40000, undefined]] as const) {
      // B = 40000: the rows read span x (30 MB), which does not fit in the buffer instance's memory: it grows during
      // the call
      const rows = Int32Array.from([1, 0, 2, 2, B - 2]);
      const x = new Float32Array(B * 192).map((_, i) => (i < 3 * 192 || i >= (B - 2) * 192 ? rng.normal() : 0));
      const want = maskRowsKernel(k, x, rows, masks, d, space.pixelFeature, 3, base, new Float32Array(n));
      const view = kb.view(n).fill(NaN);
      const got = maskRowsKernel(k, x, rows, masks, d, space.pixelFeature, 3, base, view);
      expect(KernelBuffer.owning(got, n)).toBe(kb);
      expect(Array.from(got)).toEqual(Array.from(want));
      if (B > 3) expect(view.length).toBe(0); // the old view was detached by the growth
      else expect(got.buffer === view.buffer && got.byteOffset === view.byteOffset).toBe(true);
      expect(Array.from(kb.view(n))).toEqual(Array.from(want));
    }
    // a plain array (or a view beyond the buffer) is not owned: written through the shared instance as before
    expect(KernelBuffer.owning(new Float32Array(n), n)).toBeUndefined();
    expect(KernelBuffer.owning(kb.view(n), n + 1)).toBeUndefined();
  });

  itK('row products: float32 products accumulated over k in order, bit for bit, for every column count up to 17', () => {
    const k = K();
    const rng = new Rng(17);
    for (let C = 1; C <= 17; C++) {
      for (const n of [1, 6, 9]) {
        const kk = 7;
        const X = new Float32Array(n * kk).map(() => rng.normal());
        const W = new Float32Array(kk * C).map(() => rng.normal());
        const Y = matmulRowsKernel(k, X, n, kk, W, C);
        expect(Y.length).toBe(n * C);
        for (let r = 0; r < n; r++) {
          for (let c = 0; c < C; c++) {
            let s = 0;
            for (let q = 0; q < kk; q++) s = Math.fround(s + Math.fround(X[r * kk + q] * W[q * C + c]));
            expect(Y[r * C + c]).toBe(s);
          }
        }
      }
    }
  });

  itK('row products: X·W against float64', () => {
    const k = K();
    const rng = new Rng(4);
    for (const [n, kk, C] of [[37, 10, 10], [5, 256, 7], [1, 3, 1], [9, 20, 14], [3, 5, 20], [6, 64, 4]]) {
      const X = new Float32Array(n * kk).map(() => rng.normal());
      const W = new Float32Array(kk * C).map(() => rng.normal());
      const Y = matmulRowsKernel(k, X, n, kk, W, C);
      for (let r = 0; r < n; r++) {
        for (let c = 0; c < C; c++) {
          let s = 0;
          for (let q = 0; q < kk; q++) s += X[r * kk + q] * W[q * C + c];
          expect(Math.abs(Y[r * C + c] - s)).toBeLessThan(1e-5 * Math.sqrt(kk) * (1 + Math.abs(s)));
        }
      }
    }
  });

  itK('generator logits: the factored product against float64 (broadcast and full operands; vector and scalar widths; query blocks of four and their tails; P in blocks of eight vectors)', () => {
    const k = K();
    const rng = new Rng(6);
    for (const [B, d, p, nq] of [[3, 10, 4, 3], [2, 16, 3, 3], [2, 20, 8, 3], [2, 16, 32, 6], [2, 20, 36, 8], [1, 10, 32, 5]]) {
      const qs = Int32Array.from([0, 3, 9, 1, 2, 5, 7, 4].slice(0, nq));
      const m = qs.length;
      const V = new Float32Array(B * d * p).map(() => rng.normal());
      const G = new Float32Array(p * p).map(() => rng.normal());
      for (const full of [true, false]) {
        const aBk = new Float32Array((full ? m : 1) * p).map(() => rng.normal());
        const Abk = new Float32Array(p * (full ? d : 1)).map(() => rng.normal());
        const abkCols = full ? d : 1;
        const abk = new Float32Array((full ? m : 1) * abkCols).map(() => rng.normal());
        const L = genLogitsKernel(k, { V, B, d, p, qs, G, aBk, Abk, abk, abkCols });
        for (let b = 0; b < B; b++) {
          for (let i = 0; i < m; i++) {
            const vq = Array.from(V.subarray((b * d + qs[i]) * p, (b * d + qs[i] + 1) * p));
            const P = Array.from({ length: p }, (_, q) => vq.reduce((s, v, t) => s + v * G[t * p + q], 0) + aBk[(full ? i : 0) * p + q]);
            for (let j = 0; j < d; j++) {
              let want = abk[(full ? i : 0) * abkCols + (full ? j : 0)];
              for (let q = 0; q < p; q++) want += P[q] * V[(b * d + j) * p + q] + vq[q] * Abk[q * (full ? d : 1) + (full ? j : 0)];
              expect(Math.abs(L[(b * m + i) * d + j] - want)).toBeLessThan(1e-5 * (1 + Math.abs(want)));
            }
          }
        }
      }
    }
  });

  itK('SOP inference with hidden-state keys scores each chunk as it comes: the same values as selecting on all keys at once', async () => {
    const rng = new Rng(15);
    const d = 24;
    const x = new Float32Array(7 * d).map(() => rng.normal());
    const inputs: Inputs = { x: { data: x, shape: [7, d] } };
    const mlp = new MlpBackbone({ inputDim: d, outputDim: 5, hidden: [12, 20], seed: 4 });
    mlp.setTrainable(false);
    const sop = new SopModel({ backbone: mlp, space: new ColumnsSpace([d]), masker: zeroMasker, task: 'classification', numOutputs: 5 }, inputs, {
      groups: 6,
      keep: 0.25,
      maskBatchSize: 10, // 42 rows: chunks of 10, 10, 10, 10, 2
      selectorKeys: 'hidden',
      seed: 2,
    });
    expect(sop.keys).toBe('hidden');
    const p = await sop.predict(inputs);
    const t = await sop.forward(inputs);
    const whole = noGrad(() => (sop.selector as SparsemaxGroupSelector).selectAndCombine(new Tensor(t.hidden!, [7, 6, 20]), t.rawOutputs, t.scales.data))!;
    expect(Array.from(p.hidden!)).toEqual(Array.from(t.hidden!));
    for (const [a, b] of [[p.weights, whole.weights], [p.groupOutputs, whole.scaled], [p.contributions, whole.contributions], [p.output, whole.output], [t.output.data, whole.output]]) {
      expect(Array.from(a)).toEqual(Array.from(b));
    }
  });

  it('SOP inference with the kernels equals the JavaScript inference path and the graph path (with and without position embeddings)', async () => {
    for (const positionEmbedding of [true, false]) {
      const rng = new Rng(11);
      const x = new Float32Array(6 * 64).map(() => rng.normal());
      const inputs: Inputs = { x: { data: x, shape: [6, 1, 8, 8] } };
      const mlp = new MlpBackbone({ inputDim: 64, outputDim: 4, hidden: [16], seed: 2 });
      mlp.setTrainable(false);
      // a backbone over images: flatten the rows for the MLP
      const backbone = { ...mlp, name: 'mlp', info: mlp.info, capabilities: mlp.capabilities, forward: (inp: Inputs, o?: object) => mlp.forward({ x: { data: inp.x.data, shape: [inp.x.shape[0], 64] } }, o) };
      const sop = new SopModel({ backbone, space: new PatchesSpace([1, 8, 8], [2, 2]), masker: zeroMasker, task: 'classification', numOutputs: 4 }, inputs, {
        groups: 8,
        keep: 0.25,
        maskBatchSize: 20,
        positionEmbedding,
        seed: 1,
      });
      const fast = await sop.predict(inputs);
      const js = await withoutKernelsAsync(() => sop.predict(inputs));
      const graph = await sop.forward(inputs, { grad: true });
      expect(Array.from(fast.masks)).toEqual(Array.from(js.masks));
      expect(Array.from(graph.masks)).toEqual(Array.from(fast.masks));
      for (const [a, b] of [[fast.output, js.output], [fast.output, graph.output.data], [fast.weights, js.weights], [fast.scales, js.scales]]) {
        a.forEach((v, i) => expect(Math.abs(v - b[i])).toBeLessThan(1e-5 * (1 + Math.abs(v))));
      }
      // deletion groups (bottom-k) and another keep at inference
      const del = await sop.predict(inputs, { deletion: true, keep: 0.5 });
      const delJs = await withoutKernelsAsync(() => sop.predict(inputs, { deletion: true, keep: 0.5 }));
      expect(Array.from(del.masks)).toEqual(Array.from(delJs.masks));
      del.scales.forEach((v, i) => expect(Math.abs(v - delJs.scales[i])).toBeLessThan(1e-6));
      // faithful by construction on both paths
      for (const r of [fast, js]) {
        for (let b = 0; b < 6; b++) {
          for (let c = 0; c < 4; c++) {
            let s = 0;
            for (let j = 0; j < 8; j++) s += r.contributions[(b * 8 + j) * 4 + c];
            expect(Math.abs(s - r.output[b * 4 + c])).toBeLessThan(1e-6);
          }
        }
      }
    }
  });
});
