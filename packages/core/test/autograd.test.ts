/**
 * Gradient checks of every autograd op: the engine's analytic vector-Jacobian product (random cotangent) against
 * central finite differences of small float64 reference implementations written here, independently of the engine.
 */
import { describe, expect, it } from 'vitest';
import {
  Rng,
  Tensor,
  add,
  addScalar,
  blur,
  concat,
  crossEntropy,
  div,
  dropout,
  eye,
  exp,
  gelu,
  indexSelect,
  layerNorm,
  log,
  logSoftmax,
  matmul,
  matmulNT,
  mean,
  mse,
  mul,
  neg,
  normalInit,
  noGrad,
  parameter,
  relu,
  reshape,
  rowDot,
  scale,
  sigmoid,
  softmax,
  sparsemax,
  sub,
  sum,
  tanh,
  topkMask,
  topkMass,
  transpose,
  xavierUniform,
} from '@sop/core';
import { setKernelsEnabled } from '../src/kernels/index.js';

// ---------------------------------------------------------------- float64 reference helpers

interface F64 {
  d: Float64Array;
  s: number[];
}
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
function unravel(i: number, s: number[]): number[] {
  const idx = new Array<number>(s.length);
  for (let d = s.length - 1; d >= 0; d--) {
    idx[d] = i % s[d];
    i = Math.floor(i / s[d]);
  }
  return idx;
}
function ravel(idx: number[], s: number[]): number {
  let i = 0;
  for (let d = 0; d < s.length; d++) i = i * s[d] + idx[d];
  return i;
}
function build(s: number[], f: (idx: number[]) => number): F64 {
  const d = new Float64Array(size(s));
  for (let i = 0; i < d.length; i++) d[i] = f(unravel(i, s));
  return { d, s };
}
function bshape(a: number[], b: number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    out.push(Math.max(x, y));
  }
  return out;
}
/** Read `a` at a broadcast index of an output with `nd` dims. */
function at(a: F64, idx: number[]): number {
  const off = idx.length - a.s.length;
  const j = a.s.map((dim, d) => (dim === 1 ? 0 : idx[d + off]));
  return a.d[ravel(j, a.s)];
}
function bin(a: F64, b: F64, f: (x: number, y: number) => number): F64 {
  return build(bshape(a.s, b.s), (idx) => f(at(a, idx), at(b, idx)));
}
function map(a: F64, f: (x: number) => number): F64 {
  return { d: a.d.map(f), s: a.s };
}
function refSum(a: F64, axes: number[] | undefined, keep: boolean, avg = false): F64 {
  const ax = (axes ?? a.s.map((_, i) => i)).map((x) => (x < 0 ? x + a.s.length : x));
  const keepS = a.s.map((d, i) => (ax.includes(i) ? 1 : d));
  const out = new Float64Array(size(keepS));
  for (let i = 0; i < a.d.length; i++) {
    const idx = unravel(i, a.s).map((v, d) => (ax.includes(d) ? 0 : v));
    out[ravel(idx, keepS)] += a.d[i];
  }
  const cnt = a.d.length / out.length;
  if (avg) for (let i = 0; i < out.length; i++) out[i] /= cnt;
  return { d: out, s: keep ? keepS : a.s.filter((_, i) => !ax.includes(i)) };
}
/** Apply a row function along `axis`. */
function alongAxis(a: F64, axis: number, f: (row: number[]) => number[]): F64 {
  const ax = axis < 0 ? axis + a.s.length : axis;
  const out = new Float64Array(a.d.length);
  for (let i = 0; i < a.d.length; i++) {
    const idx = unravel(i, a.s);
    if (idx[ax] !== 0) continue;
    const pos: number[] = [];
    for (let j = 0; j < a.s[ax]; j++) {
      idx[ax] = j;
      pos.push(ravel(idx, a.s));
    }
    const r = f(pos.map((p) => a.d[p]));
    pos.forEach((p, j) => (out[p] = r[j]));
  }
  return { d: out, s: a.s };
}
function refSoftmax(row: number[]): number[] {
  const e = row.map(Math.exp);
  const s = e.reduce((x, y) => x + y, 0);
  return e.map((x) => x / s);
}
/** Sparsemax by bisection on τ (Σ max(z − τ, 0) = 1), independent of the sort-based engine code. */
function refSparsemax(row: number[]): number[] {
  let lo = Math.max(...row) - 1;
  let hi = Math.max(...row);
  for (let it = 0; it < 200; it++) {
    const mid = (lo + hi) / 2;
    const s = row.reduce((acc, z) => acc + Math.max(z - mid, 0), 0);
    if (s > 1) lo = mid;
    else hi = mid;
  }
  const tau = (lo + hi) / 2;
  return row.map((z) => Math.max(z - tau, 0));
}
function refMatmul(a: F64, b: F64): F64 {
  const m = a.s[a.s.length - 2];
  const k = a.s[a.s.length - 1];
  const n = b.s[b.s.length - 1];
  const batch = bshape(a.s.slice(0, -2), b.s.slice(0, -2));
  return build([...batch, m, n], (idx) => {
    const bi = idx.slice(0, -2);
    const [i, j] = idx.slice(-2);
    let s = 0;
    for (let t = 0; t < k; t++) s += at(a, [...bi, i, t]) * at(b, [...bi, t, j]);
    return s;
  });
}
/** erf by its Maclaurin series (float64; fine for |x| < 3). */
function erfSeries(x: number): number {
  let term = x;
  let s = x;
  for (let n = 1; n < 80; n++) {
    term *= (-x * x) / n;
    s += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * s;
}

// ---------------------------------------------------------------- the checker

interface CheckOpts {
  seed?: number;
  gen?: (rng: Rng, input: number, i: number) => number;
  tol?: number;
  h?: number;
}

/**
 * Forward against the float64 reference, then ⟨c, J·δ⟩ by central differences of the reference against the engine's
 * VJP with a random cotangent c, for every element of every input.
 */
function check(shapes: number[][], eng: (ts: Tensor[]) => Tensor, ref: (xs: F64[]) => F64, opts: CheckOpts = {}): void {
  const rng = new Rng(opts.seed ?? 1);
  const gen = opts.gen ?? ((r: Rng) => r.normal());
  const xs: F64[] = shapes.map((s, k) => {
    const f32 = new Float32Array(size(s));
    for (let i = 0; i < f32.length; i++) f32[i] = gen(rng, k, i);
    return { d: Float64Array.from(f32), s };
  });
  const ts = xs.map((x) => new Tensor(Float32Array.from(x.d), [...x.s], true));
  const y = eng(ts);
  const yr = ref(xs);
  expect(y.shape).toEqual(yr.s);
  const yscale = Math.max(1, ...Array.from(yr.d, Math.abs));
  for (let i = 0; i < yr.d.length; i++) expect(Math.abs(y.data[i] - yr.d[i])).toBeLessThan(1e-5 * yscale);
  const c = new Float64Array(yr.d.length);
  for (let i = 0; i < c.length; i++) c[i] = rng.normal();
  y.backward(Float32Array.from(c));
  const h = opts.h ?? 1e-6;
  const tol = opts.tol ?? 1e-3;
  const L = (arr: F64[]) => {
    const o = ref(arr).d;
    let s = 0;
    for (let i = 0; i < o.length; i++) s += c[i] * o[i];
    return s;
  };
  xs.forEach((x, k) => {
    const num = new Float64Array(x.d.length);
    for (let i = 0; i < x.d.length; i++) {
      const orig = x.d[i];
      x.d[i] = orig + h;
      const lp = L(xs);
      x.d[i] = orig - h;
      const lm = L(xs);
      x.d[i] = orig;
      num[i] = (lp - lm) / (2 * h);
    }
    const g = ts[k].grad ?? new Float32Array(x.d.length);
    const scaleN = Math.max(1e-2, ...Array.from(num, Math.abs));
    let worst = 0;
    for (let i = 0; i < num.length; i++) worst = Math.max(worst, Math.abs(g[i] - num[i]) / scaleN);
    expect(worst, `input ${k}`).toBeLessThan(tol);
  });
}

const pos = (r: Rng) => 0.5 + 2 * r.next();

// ---------------------------------------------------------------- elementwise and broadcasting

describe('autograd elementwise ops', () => {
  const cases: Array<[string, number[], number[]]> = [
    ['same shape', [3, 4], [3, 4]],
    ['row vector', [3, 4], [4]],
    ['column', [3, 4], [3, 1]],
    ['scalar tensor', [2, 3], []],
    ['both broadcast', [2, 1, 4], [3, 1]],
    ['left broadcast', [4], [2, 3, 4]],
    ['trailing ones', [2, 3, 4], [2, 3, 1]],
    ['trailing ones, two axes', [2, 3, 4], [2, 1, 1]],
    ['same shape with a trailing 1', [3, 1], [3, 1]],
  ];
  for (const [name, sa, sb] of cases) {
    it(`add/sub/mul/div broadcast: ${name}`, () => {
      check([sa, sb], ([a, b]) => add(a, b), ([a, b]) => bin(a, b, (x, y) => x + y));
      check([sa, sb], ([a, b]) => sub(a, b), ([a, b]) => bin(a, b, (x, y) => x - y));
      check([sa, sb], ([a, b]) => mul(a, b), ([a, b]) => bin(a, b, (x, y) => x * y));
      check([sa, sb], ([a, b]) => div(a, b), ([a, b]) => bin(a, b, (x, y) => x / y), { gen: (r, k) => (k === 1 ? pos(r) : r.normal()) });
    });
  }
  it('rowDot = Σ over the last axis of a ⊙ b', () => {
    check([[2, 3, 5], [2, 3, 5]], ([a, b]) => rowDot(a, b), ([a, b]) => refSum(bin(a, b, (x, y) => x * y), [-1], false));
    check([[7], [7]], ([a, b]) => rowDot(a, b), ([a, b]) => refSum(bin(a, b, (x, y) => x * y), [-1], false));
    expect(() => rowDot(Tensor.zeros([2, 3]), Tensor.zeros([3, 2]))).toThrow(/differ/);
  });
  it('broadcast result shape and values', () => {
    const a = Tensor.from([1, 2, 3], [3, 1]);
    const b = Tensor.from([10, 20], [2]);
    const y = add(a, b);
    expect(y.shape).toEqual([3, 2]);
    expect(Array.from(y.data)).toEqual([11, 21, 12, 22, 13, 23]);
  });
  it('neg, scale, addScalar', () => {
    check([[5]], ([a]) => neg(a), ([a]) => map(a, (x) => -x));
    check([[2, 3]], ([a]) => scale(a, 2.5), ([a]) => map(a, (x) => 2.5 * x));
    check([[2, 3]], ([a]) => addScalar(a, -1.5), ([a]) => map(a, (x) => x - 1.5));
  });
  it('exp, log, relu, tanh, sigmoid', () => {
    check([[3, 5]], ([a]) => exp(a), ([a]) => map(a, Math.exp));
    check([[3, 5]], ([a]) => log(a), ([a]) => map(a, Math.log), { gen: pos });
    check([[3, 5]], ([a]) => relu(a), ([a]) => map(a, (x) => Math.max(x, 0)));
    check([[3, 5]], ([a]) => tanh(a), ([a]) => map(a, Math.tanh));
    check([[3, 5]], ([a]) => sigmoid(a), ([a]) => map(a, (x) => 1 / (1 + Math.exp(-x))), { gen: (r) => 4 * r.normal() });
  });
  it('gelu (exact erf form)', () => {
    check([[4, 5]], ([a]) => gelu(a), ([a]) => map(a, (x) => 0.5 * x * (1 + erfSeries(x / Math.SQRT2))), { gen: (r) => 1.5 * r.normal() });
    // torch.nn.functional.gelu values
    const y = gelu(Tensor.from([-1, 0, 0.5, 2], [4]));
    const want = [-0.15865525393145707, 0, 0.34573123063700656, 1.9544997361036416];
    y.data.forEach((v, i) => expect(v).toBeCloseTo(want[i], 6));
  });
  it('a tensor used twice accumulates both paths', () => {
    check([[2, 3]], ([a]) => mul(a, a), ([a]) => map(a, (x) => x * x));
    check([[2, 3]], ([a]) => add(exp(a), mul(a, a)), ([a]) => map(a, (x) => Math.exp(x) + x * x));
  });
});

// ---------------------------------------------------------------- reductions and shapes

describe('autograd reductions and shape ops', () => {
  it('sum over all / one axis / several axes, keepDims', () => {
    check([[2, 3, 4]], ([a]) => sum(a), ([a]) => refSum(a, undefined, false));
    check([[2, 3, 4]], ([a]) => sum(a, 1), ([a]) => refSum(a, [1], false));
    check([[2, 3, 4]], ([a]) => sum(a, -1, true), ([a]) => refSum(a, [2], true));
    check([[2, 3, 4]], ([a]) => sum(a, 0), ([a]) => refSum(a, [0], false));
    check([[2, 3, 4]], ([a]) => sum(a, [0, 2]), ([a]) => refSum(a, [0, 2], false));
    check([[2, 3, 4]], ([a]) => sum(a, [2, 0], true), ([a]) => refSum(a, [0, 2], true));
    expect(sum(Tensor.from([1, 2, 3, 4], [2, 2])).shape).toEqual([]);
  });
  it('mean', () => {
    check([[2, 3, 4]], ([a]) => mean(a), ([a]) => refSum(a, undefined, false, true));
    check([[2, 3, 4]], ([a]) => mean(a, 1, true), ([a]) => refSum(a, [1], true, true));
    check([[2, 3, 4]], ([a]) => mean(a, [0, 1]), ([a]) => refSum(a, [0, 1], false, true));
    expect(mean(Tensor.from([1, 2, 3, 4], [2, 2]), 0).data).toEqual(new Float32Array([2, 3]));
  });
  it('reshape with -1', () => {
    check([[2, 6]], ([a]) => mul(reshape(a, [3, -1]), reshape(a, [3, 4])), ([a]) => ({ d: a.d.map((x) => x * x), s: [3, 4] }));
    expect(reshape(Tensor.zeros([2, 3, 4]), [-1, 4]).shape).toEqual([6, 4]);
    expect(() => reshape(Tensor.zeros([2, 3]), [4, -1])).toThrow();
  });
  it('transpose default and with perm', () => {
    const tr = (a: F64, perm: number[]) =>
      build(
        perm.map((p) => a.s[p]),
        (idx) => {
          const src = new Array<number>(idx.length);
          perm.forEach((p, i) => (src[p] = idx[i]));
          return a.d[ravel(src, a.s)];
        },
      );
    check([[3, 5]], ([a]) => transpose(a), ([a]) => tr(a, [1, 0]));
    check([[2, 3, 4]], ([a]) => transpose(a), ([a]) => tr(a, [0, 2, 1]));
    check([[2, 3, 4]], ([a]) => transpose(a, [2, 0, 1]), ([a]) => tr(a, [2, 0, 1]));
    check([[2, 3, 4, 2]], ([a]) => transpose(a, [1, 3, 0, 2]), ([a]) => tr(a, [1, 3, 0, 2]));
    check([[34, 7]], ([a]) => transpose(a), ([a]) => tr(a, [1, 0])); // crosses a 32-wide transpose block
  });
  it('indexSelect (with repeats) and concat', () => {
    const ids = Int32Array.from([2, 0, 2]);
    check([[4, 3]], ([a]) => indexSelect(a, 0, ids), ([a]) => build([3, 3], ([i, j]) => a.d[ravel([ids[i], j], a.s)]));
    check([[2, 4, 3]], ([a]) => indexSelect(a, 1, ids), ([a]) => build([2, 3, 3], ([b, i, j]) => a.d[ravel([b, ids[i], j], a.s)]));
    check(
      [
        [2, 1, 3],
        [2, 2, 3],
      ],
      ([a, b]) => concat([a, b], 1),
      ([a, b]) => build([2, 3, 3], ([i, j, k]) => (j < 1 ? a.d[ravel([i, j, k], a.s)] : b.d[ravel([i, j - 1, k], b.s)])),
    );
    check(
      [
        [2, 3],
        [1, 3],
      ],
      ([a, b]) => concat([a, b], 0),
      ([a, b]) => ({ d: Float64Array.from([...a.d, ...b.d]), s: [3, 3] }),
    );
  });
});

// ---------------------------------------------------------------- softmax family

describe('autograd softmax, logSoftmax, sparsemax', () => {
  it('softmax and logSoftmax along the last and a middle axis', () => {
    check([[3, 5]], ([a]) => softmax(a), ([a]) => alongAxis(a, -1, refSoftmax));
    check([[2, 4, 3]], ([a]) => softmax(a, 1), ([a]) => alongAxis(a, 1, refSoftmax));
    check([[3, 5]], ([a]) => logSoftmax(a), ([a]) => alongAxis(a, -1, (r) => refSoftmax(r).map(Math.log)));
    check([[2, 4, 3]], ([a]) => logSoftmax(a, 0), ([a]) => alongAxis(a, 0, (r) => refSoftmax(r).map(Math.log)));
  });
  it('softmax is stable for large logits', () => {
    const y = softmax(Tensor.from([1000, 1001, 1002], [3]));
    const want = refSoftmax([0, 1, 2]);
    y.data.forEach((v, i) => expect(v).toBeCloseTo(want[i], 6));
  });
  it('sparsemax closed form [1, 0.5, 0.2, -1]', () => {
    const z = new Tensor(Float32Array.from([1, 0.5, 0.2, -1]), [4], true);
    const p = sparsemax(z);
    [0.75, 0.25, 0, 0].forEach((v, i) => expect(p.data[i]).toBeCloseTo(v, 6));
    p.backward(Float32Array.from([1, 2, 3, 4]));
    [-0.5, 0.5, 0, 0].forEach((v, i) => expect(z.grad![i]).toBeCloseTo(v, 6));
    // shift invariance and stability
    const q = sparsemax(Tensor.from([1001, 1000.5, 1000.2, 999], [4]));
    [0.75, 0.25, 0, 0].forEach((v, i) => expect(q.data[i]).toBeCloseTo(v, 4));
  });
  it('softmax and sparsemax on longer rows (last axis and a middle axis)', () => {
    check([[3, 40]], ([a]) => softmax(a), ([a]) => alongAxis(a, -1, refSoftmax), { seed: 3 });
    check([[2, 70]], ([a]) => sparsemax(a), ([a]) => alongAxis(a, -1, refSparsemax), { gen: (r) => 0.2 * r.normal(), seed: 4 });
    check([[2, 20, 3]], ([a]) => sparsemax(a, 1), ([a]) => alongAxis(a, 1, refSparsemax), { gen: (r) => 0.5 * r.normal(), seed: 6 });
  });
  it('sparsemax against bisection reference (rows sum to 1, gradients)', () => {
    check([[4, 6]], ([a]) => sparsemax(a), ([a]) => alongAxis(a, -1, refSparsemax), { gen: (r) => 1.5 * r.normal() });
    check([[3, 5, 2]], ([a]) => sparsemax(a, 1), ([a]) => alongAxis(a, 1, refSparsemax), { gen: (r) => 1.5 * r.normal(), seed: 5 });
    const p = sparsemax(Tensor.from([0.3, -2, 0.1, 0.2, 5, 5], [2, 3]));
    expect(p.data[0] + p.data[1] + p.data[2]).toBeCloseTo(1, 6);
    expect(Array.from(p.data.slice(3))).toEqual([0, 0.5, 0.5]);
  });
});

describe('matmulNT (a @ bᵀ without a transposed copy)', () => {
  const refNT = (a: F64, b: F64): F64 => {
    const nd = b.s.length;
    const bt = build([...b.s.slice(0, -2), b.s[nd - 1], b.s[nd - 2]], (idx) => {
      const j = [...idx];
      [j[nd - 2], j[nd - 1]] = [idx[nd - 1], idx[nd - 2]];
      return b.d[ravel(j, b.s)];
    });
    return refMatmul(a, bt);
  };
  it('batched (same batch dims), shared 2-D b, short and long inner dimensions, with gradients', () => {
    check([[3, 5, 4], [3, 6, 4]], ([a, b]) => matmulNT(a, b), ([a, b]) => refNT(a, b));
    check([[2, 1, 5, 18], [2, 1, 3, 18]], ([a, b]) => matmulNT(a, b), ([a, b]) => refNT(a, b), { seed: 2 });
    check([[2, 5, 3], [4, 3]], ([a, b]) => matmulNT(a, b), ([a, b]) => refNT(a, b), { seed: 3 });
    check([[1, 1], [1, 1]], ([a, b]) => matmulNT(a, b), ([a, b]) => refNT(a, b), { seed: 4 });
  });
  it('equals matmul(a, transpose(b)) and rejects mismatched shapes', () => {
    const rng = new Rng(8);
    const a = new Tensor(Float32Array.from({ length: 4 * 16 * 4 }, () => rng.normal()), [4, 16, 4]);
    const b = new Tensor(Float32Array.from({ length: 4 * 16 * 4 }, () => rng.normal()), [4, 16, 4]);
    const x = matmulNT(a, b).data;
    const y = matmul(a, transpose(b)).data;
    for (let i = 0; i < x.length; i++) expect(Math.abs(x[i] - y[i])).toBeLessThan(1e-5);
    expect(() => matmulNT(Tensor.zeros([2, 3]), Tensor.zeros([2, 4]))).toThrow(/inner/);
    expect(() => matmulNT(Tensor.zeros([2, 2, 3]), Tensor.zeros([3, 2, 3]))).toThrow(/batch/);
  });
});

// ---------------------------------------------------------------- layers, losses, blur, masks

/** torchvision gaussian_blur as a direct (non-separable) 2-D correlation with reflect padding. */
function refBlur(a: F64, grid: number[], ks: number, sigma: number): F64 {
  const half = (ks - 1) / 2;
  const k1 = Array.from({ length: ks }, (_, i) => Math.exp(-0.5 * ((i - half) / sigma) ** 2));
  const s1 = k1.reduce((x, y) => x + y, 0);
  const k = k1.map((x) => x / s1);
  const refl = (i: number, n: number) => (i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i);
  const [h, w] = grid.length === 2 ? grid : [1, grid[0]];
  const last = a.s[a.s.length - 1];
  return build(a.s, (idx) => {
    const flat = ravel(idx, a.s);
    const base = flat - idx[idx.length - 1];
    const cell = idx[idx.length - 1];
    const r = Math.floor(cell / w);
    const c = cell % w;
    let s = 0;
    for (let dy = 0; dy < (grid.length === 2 ? ks : 1); dy++) {
      for (let dx = 0; dx < ks; dx++) {
        const rr = grid.length === 2 ? refl(r + dy - half, h) : 0;
        const cc = refl(c + dx - half, w);
        const wy = grid.length === 2 ? k[dy] : 1;
        s += wy * k[dx] * a.d[base + rr * w + cc];
      }
    }
    void last;
    return s;
  });
}

describe('autograd layers and losses', () => {
  it('layerNorm with and without affine parameters', () => {
    const ln = (a: F64, g?: F64, b?: F64) =>
      alongAxis(a, -1, (row) => {
        const mu = row.reduce((x, y) => x + y, 0) / row.length;
        const v = row.reduce((x, y) => x + (y - mu) ** 2, 0) / row.length;
        return row.map((x, j) => ((x - mu) / Math.sqrt(v + 1e-5)) * (g ? g.d[j] : 1) + (b ? b.d[j] : 0));
      });
    check([[3, 6], [6], [6]], ([x, g, b]) => layerNorm(x, g, b), ([x, g, b]) => ln(x, g, b));
    check([[2, 2, 5]], ([x]) => layerNorm(x, null, null), ([x]) => ln(x));
    check([[3, 6], [6]], ([x, g]) => layerNorm(x, g, null), ([x, g]) => ln(x, g));
  });
  it('crossEntropy and mse', () => {
    const labels = Int32Array.from([2, 0, 1]);
    check([[3, 4]], ([z]) => crossEntropy(z, labels), ([z]) => {
      let s = 0;
      for (let b = 0; b < 3; b++) {
        const row = Array.from(z.d.slice(b * 4, b * 4 + 4));
        s += -Math.log(refSoftmax(row)[labels[b]]);
      }
      return { d: Float64Array.from([s / 3]), s: [] };
    });
    check([[2, 3], [2, 3]], ([p, t]) => mse(p, t), ([p, t]) => {
      let s = 0;
      for (let i = 0; i < 6; i++) s += (p.d[i] - t.d[i]) ** 2;
      return { d: Float64Array.from([s / 6]), s: [] };
    });
    // torch.nn.functional.cross_entropy([[1,2,3],[1,1,1]], [2,0]) = 0.9556
    expect(crossEntropy(Tensor.from([1, 2, 3, 1, 1, 1], [2, 3]), Int32Array.from([2, 0])).item()).toBeCloseTo((0.40760596444 + Math.log(3)) / 2, 6);
  });
  it('blur: hand-computed 3-tap 1-D case', () => {
    // sigma = 1: k = [e^-0.5, 1, e^-0.5] / (1 + 2e^-0.5)
    const e = Math.exp(-0.5);
    const k0 = e / (1 + 2 * e);
    const k1 = 1 / (1 + 2 * e);
    const x = Tensor.from([1, 2, 3, 4], [4]);
    const y = blur(x, [4], 3, 1);
    // reflect padding: [2, 1, 2, 3, 4, 3]
    const want = [k0 * 2 + k1 * 1 + k0 * 2, k0 * 1 + k1 * 2 + k0 * 3, k0 * 2 + k1 * 3 + k0 * 4, k0 * 3 + k1 * 4 + k0 * 3];
    want.forEach((v, i) => expect(y.data[i]).toBeCloseTo(v, 6));
    expect(k0).toBeCloseTo(0.27406862, 7); // torchvision _get_gaussian_kernel1d(3, 1.0)[0]
    expect(blur(x, [4], 1, 1)).toBe(x);
  });
  it('blur: 2-D grid against a direct correlation, and its adjoint gradient', () => {
    check([[2, 20]], ([x]) => blur(x, [4, 5], 3, 1), ([x]) => refBlur(x, [4, 5], 3, 1));
    check([[2, 3, 30]], ([x]) => blur(x, [5, 6], 5, 1.5), ([x]) => refBlur(x, [5, 6], 5, 1.5));
    check([[3, 9]], ([x]) => blur(x, [9], 5, 0.8), ([x]) => refBlur(x, [9], 5, 0.8));
  });
  it('topkMask: largest/smallest, ties to the lower index, no gradient', () => {
    const a = new Tensor(Float32Array.from([3, 1, 3, 2, 0, 5, 5, 5]), [2, 4], true);
    const m = topkMask(a, 2);
    expect(Array.from(m.data)).toEqual([1, 0, 1, 0, 0, 1, 1, 0]);
    expect(m.requiresGrad).toBe(false);
    expect(Array.from(topkMask(a, 1, -1, false).data)).toEqual([0, 1, 0, 0, 1, 0, 0, 0]);
    expect(Array.from(topkMask(a, 1, 0).data)).toEqual([1, 0, 0, 0, 0, 1, 1, 1]);
  });
  it('topkMask: partial selection equals a full sort (random rows with ties and NaN, any k, both directions, any axis)', () => {
    const rng = new Rng(21);
    const refTopk = (row: number[], k: number, largest: boolean): number[] => {
      const v = row.map((x) => (Number.isNaN(x) ? -Infinity : largest ? x : -x));
      const idx = v.map((_, i) => i).sort((i, j) => (v[j] > v[i] ? 1 : v[j] < v[i] ? -1 : i - j));
      const m = row.map(() => 0);
      idx.slice(0, k).forEach((i) => (m[i] = 1));
      return m;
    };
    for (const len of [1, 2, 5, 16, 33]) {
      const data = Float32Array.from({ length: 3 * len * 2 }, () => {
        const u = rng.next();
        return u < 0.05 ? NaN : u < 0.3 ? 0.5 : Math.round(rng.normal() * 4) / 4; // many ties
      });
      const a = new Tensor(data, [3, len, 2]);
      for (const k of [0, 1, Math.floor(len / 2), len - 1, len]) {
        for (const largest of [true, false]) {
          const got = topkMask(a, k, 1, largest);
          const want = alongAxis({ d: Float64Array.from(data), s: [3, len, 2] }, 1, (row) => refTopk(row, Math.max(0, k), largest));
          expect(Array.from(got.data), `len ${len} k ${k} largest ${largest}`).toEqual(Array.from(want.d));
        }
      }
    }
  });
  it('topkMass: fused softmax + top-k + c = 2·Σ_top a − 1, bit-identical to the unfused ops, gradient w.r.t. the logits', () => {
    const topkC = (row: number[], k: number, largest: boolean): number => {
      const a = refSoftmax(row);
      const idx = a.map((_, i) => i).sort((i, j) => (largest ? a[j] - a[i] : a[i] - a[j]) || i - j);
      return 2 * idx.slice(0, k).reduce((acc, i) => acc + a[i], 0) - 1;
    };
    for (const largest of [true, false]) {
      check([[2, 3, 7]], ([x]) => topkMass(x, 3, largest).scales, ([x]) => build([2, 3], ([b, i]) => topkC(Array.from(x.d.slice((b * 3 + i) * 7, (b * 3 + i + 1) * 7)), 3, largest)), { seed: 13 });
    }
    // the JavaScript path is bit-identical to the unfused ops; the WebAssembly kernel (float32 exp) agrees within 1e-6
    const rng = new Rng(17);
    for (const [len, k] of [[9, 2], [16, 4], [5, 5], [4, 0], [40, 13]]) {
      const data = Float32Array.from({ length: 6 * len }, () => Math.round(rng.normal() * 3) / 2);
      const x = new Tensor(data, [2, 3, len]);
      const a = softmax(x);
      const m = topkMask(a, k);
      const c = addScalar(scale(rowDot(a, m), 2), -1);
      const prev = setKernelsEnabled(false);
      try {
        const f = topkMass(x, k);
        expect(Array.from(f.attention.data)).toEqual(Array.from(a.data));
        expect(Array.from(f.masks.data)).toEqual(Array.from(m.data));
        expect(Array.from(f.scales.data)).toEqual(Array.from(c.data));
        expect(f.scales.shape).toEqual([2, 3]);
      } finally {
        setKernelsEnabled(prev);
      }
      const w = topkMass(x, k);
      expect(Array.from(w.masks.data)).toEqual(Array.from(m.data));
      w.attention.data.forEach((v, i) => expect(Math.abs(v - a.data[i])).toBeLessThanOrEqual(1e-6 * a.data[i] + 1e-30));
      w.scales.data.forEach((v, i) => expect(Math.abs(v - c.data[i])).toBeLessThanOrEqual(1e-6));
    }
  });
  it('dropout: identity when not training; inverted scaling and masked gradient when training', () => {
    const x = parameter(Float32Array.from({ length: 1000 }, () => 1), [1000]);
    expect(dropout(x, 0.3, new Rng(1), false)).toBe(x);
    const y = dropout(x, 0.25, new Rng(1), true);
    const kept = Array.from(y.data).filter((v) => v !== 0);
    kept.forEach((v) => expect(v).toBeCloseTo(1 / 0.75, 6));
    expect(kept.length).toBeGreaterThan(700);
    expect(kept.length).toBeLessThan(800);
    sum(y).backward();
    x.grad!.forEach((g, i) => expect(g).toBeCloseTo(y.data[i], 6));
  });
});

describe('autograd graph mechanics', () => {
  it('an SOP-like chain: attention logits, 2-D blur, softmax, top-k scale, sparsemax', () => {
    // X [2, 9, 4] on a 3×3 grid; Q = X·Wq, K = X·Wk; L = 0.5·Q·Kᵀ; A = softmax(blur(L)); M = top-3(A);
    // c = 2·Σ(A⊙M) − 1; y = sparsemax(3·c) over the 9 groups
    const topk = (row: number[], k: number) => {
      const idx = row.map((_, i) => i).sort((i, j) => row[j] - row[i] || i - j);
      const m = row.map(() => 0);
      idx.slice(0, k).forEach((i) => (m[i] = 1));
      return m;
    };
    check(
      [[2, 9, 4], [4, 3], [4, 3]],
      ([x, wq, wk]) => {
        const q = matmul(x, wq);
        const k = matmul(x, wk);
        const a = softmax(blur(scale(matmul(q, transpose(k)), 0.5), [3, 3], 3, 1));
        const m = topkMask(a, 3);
        const c = addScalar(scale(sum(mul(a, m), -1), 2), -1);
        return sparsemax(scale(c, 3), -1);
      },
      ([x, wq, wk]) => {
        const q = refMatmul(x, wq);
        const k = refMatmul(x, wk);
        const kt = build([2, 3, 9], ([b, e, p]) => k.d[ravel([b, p, e], k.s)]);
        const logits = map(refMatmul(q, kt), (v) => 0.5 * v);
        const a = alongAxis(refBlur(logits, [3, 3], 3, 1), -1, refSoftmax);
        const c = build([2, 9], ([b, i]) => {
          const row = Array.from(a.d.slice((b * 9 + i) * 9, (b * 9 + i + 1) * 9));
          const m = topk(row, 3);
          return 2 * row.reduce((acc, v, j) => acc + v * m[j], 0) - 1;
        });
        return alongAxis(map(c, (v) => 3 * v), -1, refSparsemax);
      },
      { seed: 9, h: 1e-5 },
    );
  });

  it('noGrad builds no graph', () => {
    const p = parameter(Float32Array.from([1, 2]), [2]);
    const y = noGrad(() => mul(p, p));
    expect(y.requiresGrad).toBe(false);
    expect(y.parents.length).toBe(0);
  });
  it('a small MLP-like chain: matmul + bias + gelu + logSoftmax', () => {
    check(
      [[3, 4], [4, 5], [5]],
      ([x, w, b]) => logSoftmax(gelu(add(matmul(x, w), b))),
      ([x, w, b]) => {
        const h = bin(refMatmul(x, w), b, (u, v) => u + v);
        const g = map(h, (u) => 0.5 * u * (1 + erfSeries(u / Math.SQRT2)));
        return alongAxis(g, -1, (r) => refSoftmax(r).map(Math.log));
      },
      { h: 1e-5 },
    );
  });
});



describe('initialisers', () => {
  it('xavierUniform: bound √(6/(fan_in+fan_out)), uniform variance; normalInit std; eye', () => {
    const w = xavierUniform([200, 300], new Rng(2));
    expect(w.length).toBe(60000);
    const bound = Math.sqrt(6 / 500);
    let mx = 0;
    let ss = 0;
    for (const v of w) {
      mx = Math.max(mx, Math.abs(v));
      ss += v * v;
    }
    expect(mx).toBeLessThanOrEqual(bound);
    expect(mx).toBeGreaterThan(0.99 * bound);
    expect(ss / w.length / ((bound * bound) / 3)).toBeCloseTo(1, 1);
    const z = normalInit([100, 100], 0.02, new Rng(3));
    let m = 0;
    let v2 = 0;
    for (const x of z) m += x / z.length;
    for (const x of z) v2 += (x - m) ** 2 / z.length;
    expect(Math.abs(m)).toBeLessThan(0.001);
    expect(Math.sqrt(v2)).toBeCloseTo(0.02, 3);
    expect(Array.from(eye(3))).toEqual([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    expect(eye(2).shape).toEqual([2, 2]);
    // deterministic given the seed
    expect(xavierUniform([3, 4], new Rng(7))).toEqual(xavierUniform([3, 4], new Rng(7)));
    // the init arrays double as FloatTensors; parameter() stores a plain Float32Array copy (one hidden class in hot loops)
    const init = xavierUniform([3, 4], new Rng(7));
    expect(init.data).toBe(init);
    expect(init.shape).toEqual([3, 4]);
    const p = parameter(init, [3, 4]);
    expect(Object.hasOwn(p.data, 'data')).toBe(false);
    expect(Array.from(p.data)).toEqual(Array.from(init));
    const raw = new Float32Array(4);
    expect(parameter(raw, [4]).data).toBe(raw);
  });
});
