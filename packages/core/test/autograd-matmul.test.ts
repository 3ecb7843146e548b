/**
 * matmul: the blocked kernel against a float64 naive triple loop on odd sizes (remainder rows/cols and partial
 * blocks), batched and broadcast forms, and its gradients against the closed forms dA = G·Bᵀ, dB = Aᵀ·G.
 */
import { describe, expect, it } from 'vitest';
import { Rng, Tensor, gemm, gemmBlocked, gemmNaive, gemmT, gemmWasm, getGemmBackend, hasWasmSimd, matmul, setGemmBackend } from '@sop/core';
import { afterAll, beforeAll } from 'vitest';
import { makeWasmGemm } from '../src/autograd/gemm-wasm.js';

function randn(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

/** float64 C = A·B for one [m,k]·[k,n] pair at offsets. */
function naive64(A: Float32Array, aOff: number, B: Float32Array, bOff: number, m: number, k: number, n: number): Float64Array {
  const C = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += A[aOff + i * k + t] * B[bOff + t * n + j];
      C[i * n + j] = s;
    }
  return C;
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, k: number): void {
  expect(got.length).toBe(want.length);
  // float32 accumulation over k terms of unit-variance products
  const tol = 2e-6 * Math.sqrt(k) * 8;
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  expect(worst).toBeLessThan(tol);
}

function transpose64(X: Float32Array, off: number, r: number, c: number): Float32Array {
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = X[off + i * c + j];
  return out;
}

describe('gemm kernels', () => {
  const rng = new Rng(3);
  it('SIMD kernel for 4-, 5- and 6-row tiles, across row, K and column blocks, with strided operands', () => {
    // K = 1000 makes the row chunk 64/65/60 rows, so M = 150 spans three chunks with a ragged last one
    const [m, k, n] = [150, 1000, 13];
    const A = randn(m * k, rng);
    const B = randn(k * n, rng);
    const want = naive64(A, 0, B, 0, m, k, n);
    const Bt = transpose64(B, 0, k, n);
    for (const R of [4, 5, 6]) {
      const g = makeWasmGemm(R)!;
      const C = new Float32Array(m * n);
      g(A, 0, k, 1, B, 0, n, 1, C, 0, m, k, n);
      expectClose(C, want, k);
      const D = new Float32Array(m * n);
      g(A, 0, k, 1, Bt, 0, 1, k, D, 0, m, k, n);
      expectClose(D, want, k);
      // small blocks: K in blocks of 300 (ragged 100), columns in blocks of 5 (ragged 3), rows in chunks of R·2
      const small = makeWasmGemm(R, 2 * R * 300, 300, 5)!;
      const E = new Float32Array(m * n);
      small(A, 0, k, 1, B, 0, n, 1, E, 0, m, k, n);
      expectClose(E, want, k);
      const F = new Float32Array(m * n);
      small(A, 0, k, 1, Bt, 0, 1, k, F, 0, m, k, n);
      expectClose(F, want, k);
    }
  });
  for (const [m, k, n] of [
    [37, 53, 29],
    [1, 1, 1],
    [5, 300, 7],
    [130, 129, 131],
    [4, 2, 260],
    [16, 4, 16],
    [9, 16, 3],
  ]) {
    it(`blocked and naive gemm match float64 on ${m}×${k}×${n}`, () => {
      const A = randn(m * k, rng);
      const B = randn(k * n, rng);
      const want = naive64(A, 0, B, 0, m, k, n);
      for (const f of [gemm, gemmBlocked, gemmNaive]) {
        const C = new Float32Array(m * n);
        f(A, 0, B, 0, C, 0, m, k, n);
        expectClose(C, want, k);
        // accumulates into C
        f(A, 0, B, 0, C, 0, m, k, n);
        expectClose(C, Array.from(want, (v) => 2 * v), k);
      }
      // SIMD kernel, plain and with transposed (strided) operands at offsets
      expect(hasWasmSimd).toBe(true); // Node 20 has WebAssembly SIMD
      const C = new Float32Array(m * n + 3);
      expect(gemmWasm(A, 0, k, 1, B, 0, n, 1, C, 3, m, k, n)).toBe(true);
      expectClose(C.subarray(3), want, k);
      const At = new Float32Array(2 + m * k);
      At.set(transpose64(A, 0, m, k), 2);
      const Bt = new Float32Array(1 + k * n);
      Bt.set(transpose64(B, 0, k, n), 1);
      for (const backend of ['wasm', 'js'] as const) {
        setGemmBackend(backend);
        const D = new Float32Array(m * n);
        gemmT(true, true, At, 2, Bt, 1, D, 0, m, k, n);
        expectClose(D, want, k);
        const E = new Float32Array(m * n);
        gemmT(true, false, At, 2, B, 0, E, 0, m, k, n);
        gemmT(false, true, A, 0, Bt, 1, E, 0, m, k, n);
        expectClose(E, Array.from(want, (v) => 2 * v), k);
      }
      setGemmBackend('wasm');
    });
  }
});

for (const backend of ['wasm', 'js'] as const)
describe(`matmul op (${backend} kernel)`, () => {
  const rng = new Rng(11);
  beforeAll(() => void setGemmBackend(backend));
  afterAll(() => void setGemmBackend('wasm'));
  it('uses the selected kernel', () => expect(getGemmBackend()).toBe(backend));
  it('plain 2-D 37×53 @ 53×29 with gradients', () => {
    const [m, k, n] = [37, 53, 29];
    const a = new Tensor(randn(m * k, rng), [m, k], true);
    const b = new Tensor(randn(k * n, rng), [k, n], true);
    const y = matmul(a, b);
    expect(y.shape).toEqual([m, n]);
    expectClose(y.data, naive64(a.data, 0, b.data, 0, m, k, n), k);
    const G = randn(m * n, rng);
    y.backward(G);
    expectClose(a.grad!, naive64(G, 0, transpose64(b.data, 0, k, n), 0, m, n, k), n);
    expectClose(b.grad!, naive64(transpose64(a.data, 0, m, k), 0, G, 0, k, m, n), m);
  });

  it('batched [3, 2, m, k] @ [3, 2, k, n] and broadcast batch [3, 1, ...] @ [2, ...]', () => {
    const [m, k, n] = [20, 33, 17]; // m·k·n above the SIMD path’s threshold
    for (const [ba, bb] of [
      [
        [3, 2],
        [3, 2],
      ],
      [[3, 1], [2]],
      [[], [4]],
      [[2, 3], []],
    ]) {
      const a = new Tensor(randn(ba.reduce((x, y) => x * y, 1) * m * k, rng), [...ba, m, k], true);
      const b = new Tensor(randn(bb.reduce((x, y) => x * y, 1) * k * n, rng), [...bb, k, n], true);
      const y = matmul(a, b);
      // expected batch shape and per-batch references
      const nd = Math.max(ba.length, bb.length);
      const batch: number[] = [];
      for (let i = 0; i < nd; i++) batch.push(Math.max(ba[ba.length - nd + i] ?? 1, bb[bb.length - nd + i] ?? 1));
      expect(y.shape).toEqual([...batch, m, n]);
      const nb = batch.reduce((x, yy) => x * yy, 1);
      const G = randn(nb * m * n, rng);
      y.backward(G);
      const gA = new Float64Array(a.size);
      const gB = new Float64Array(b.size);
      for (let t = 0; t < nb; t++) {
        // unravel t over batch, then index a's and b's batch with broadcasting
        const idx: number[] = [];
        let r = t;
        for (let d = nd - 1; d >= 0; d--) {
          idx[d] = r % batch[d];
          r = Math.floor(r / batch[d]);
        }
        const flat = (s: number[]) => {
          let f = 0;
          const off = nd - s.length;
          s.forEach((dim, d) => (f = f * dim + (dim === 1 ? 0 : idx[d + off])));
          return f;
        };
        const ia = flat(ba);
        const ib = flat(bb);
        expectClose(y.data.subarray(t * m * n, (t + 1) * m * n), naive64(a.data, ia * m * k, b.data, ib * k * n, m, k, n), k);
        const dA = naive64(G, t * m * n, transpose64(b.data, ib * k * n, k, n), 0, m, n, k);
        const dB = naive64(transpose64(a.data, ia * m * k, m, k), 0, G, t * m * n, k, m, n);
        dA.forEach((v, i) => (gA[ia * m * k + i] += v));
        dB.forEach((v, i) => (gB[ib * k * n + i] += v));
      }
      expectClose(a.grad!, gA, n * nb);
      expectClose(b.grad!, gB, m * nb);
    }
  });

  it('rejects mismatched inner dimensions', () => {
    expect(() => matmul(Tensor.zeros([2, 3]), Tensor.zeros([4, 2]))).toThrow(/inner dimensions/);
  });
});
