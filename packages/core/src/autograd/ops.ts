/**
 * Elementwise, unary, reduction and shape ops of the autograd engine. Every op is a free function returning a new
 * Tensor made with `result(...)`; binary ops broadcast like numpy and reduce gradients back to each operand's shape.
 */
import { UserError } from '../errors.js';
import { sizeOf } from '../tensor.js';
import { broadcastMap, broadcastShapes, normAxis, sameShape, splitAt, stridesOf } from './broadcast.js';
import { erf } from './erf.js';
import { giveGrad, reduceByMap } from './grad.js';
import { result, type Tensor } from './tensor.js';
import { transpose2d } from './transpose2d.js';

let ident = new Int32Array(0);
function identity(n: number): Int32Array {
  if (ident.length < n) {
    ident = new Int32Array(Math.max(n, ident.length * 2));
    for (let i = 0; i < ident.length; i++) ident[i] = i;
  }
  return ident;
}

const ADD = 0;
const SUB = 1;
const MUL = 2;
const DIV = 3;

function binaryForward(op: number, A: Float32Array, B: Float32Array, n: number, ia: Int32Array | null, ib: Int32Array | null): Float32Array {
  const out = new Float32Array(n);
  if (!ia && !ib) {
    if (op === ADD) for (let i = 0; i < n; i++) out[i] = A[i] + B[i];
    else if (op === SUB) for (let i = 0; i < n; i++) out[i] = A[i] - B[i];
    else if (op === MUL) for (let i = 0; i < n; i++) out[i] = A[i] * B[i];
    else for (let i = 0; i < n; i++) out[i] = A[i] / B[i];
    return out;
  }
  if (!ia && B.length === 1) {
    const b = B[0];
    if (op === ADD) for (let i = 0; i < n; i++) out[i] = A[i] + b;
    else if (op === SUB) for (let i = 0; i < n; i++) out[i] = A[i] - b;
    else if (op === MUL) for (let i = 0; i < n; i++) out[i] = A[i] * b;
    else for (let i = 0; i < n; i++) out[i] = A[i] / b;
    return out;
  }
  const ma = ia ?? identity(n);
  const mb = ib ?? identity(n);
  if (op === ADD) for (let i = 0; i < n; i++) out[i] = A[ma[i]] + B[mb[i]];
  else if (op === SUB) for (let i = 0; i < n; i++) out[i] = A[ma[i]] - B[mb[i]];
  else if (op === MUL) for (let i = 0; i < n; i++) out[i] = A[ma[i]] * B[mb[i]];
  else for (let i = 0; i < n; i++) out[i] = A[ma[i]] / B[mb[i]];
  return out;
}

/** Gradient `g` (already multiplied by the local derivative) of a broadcast result, routed to `t`. */
function route(t: Tensor, g: Float32Array, map: Int32Array | null, fresh: boolean): void {
  if (map) giveGrad(t, reduceByMap(g, map, t.size));
  else if (fresh) giveGrad(t, g);
  else t.accumulate(g);
}

/** True when `b` (ignoring leading 1s) equals the trailing dimensions of `out`, e.g. a bias [n] against [B, n]. */
function isTrailing(out: readonly number[], b: readonly number[]): boolean {
  let lead = 0;
  while (lead < b.length && b[lead] === 1) lead++;
  const nb = b.length - lead;
  if (nb > out.length) return false;
  for (let i = 0; i < nb; i++) if (b[lead + i] !== out[out.length - nb + i]) return false;
  return true;
}

/** Fast path: a has the result's shape, b repeats along the leading axes (row broadcast, no index maps). */
function binaryRows(op: number, a: Tensor, b: Tensor): Tensor {
  const A = a.data;
  const B = b.data;
  const n = A.length;
  const nb = B.length;
  const y = new Float32Array(n);
  for (let o = 0; o < n; o += nb) {
    if (op === ADD) for (let j = 0; j < nb; j++) y[o + j] = A[o + j] + B[j];
    else if (op === SUB) for (let j = 0; j < nb; j++) y[o + j] = A[o + j] - B[j];
    else if (op === MUL) for (let j = 0; j < nb; j++) y[o + j] = A[o + j] * B[j];
    else for (let j = 0; j < nb; j++) y[o + j] = A[o + j] / B[j];
  }
  return result(y, [...a.shape], [a, b], (out) => {
    const g = out.grad!;
    if (a.requiresGrad) {
      if (op === ADD || op === SUB) a.accumulate(g);
      else {
        const ga = new Float32Array(n);
        if (op === MUL) for (let o = 0; o < n; o += nb) for (let j = 0; j < nb; j++) ga[o + j] = g[o + j] * B[j];
        else for (let o = 0; o < n; o += nb) for (let j = 0; j < nb; j++) ga[o + j] = g[o + j] / B[j];
        giveGrad(a, ga);
      }
    }
    if (b.requiresGrad) {
      const gb = new Float64Array(nb);
      if (op === ADD) for (let o = 0; o < n; o += nb) for (let j = 0; j < nb; j++) gb[j] += g[o + j];
      else if (op === SUB) for (let o = 0; o < n; o += nb) for (let j = 0; j < nb; j++) gb[j] -= g[o + j];
      else if (op === MUL) for (let o = 0; o < n; o += nb) for (let j = 0; j < nb; j++) gb[j] += g[o + j] * A[o + j];
      else for (let o = 0; o < n; o += nb) for (let j = 0; j < nb; j++) gb[j] -= (g[o + j] * y[o + j]) / B[j];
      giveGrad(b, Float32Array.from(gb));
    }
  });
}

/**
 * Repeat count when `b` equals the leading dimensions of `a` followed only by 1s (e.g. [B, m, 1] against
 * [B, m, C]: every element of b applies to a contiguous run of `inner` elements of a); 0 when b is not of that form.
 */
function leadingRepeat(out: readonly number[], b: readonly number[]): number {
  if (b.length !== out.length) return 0;
  let s = b.length;
  while (s > 0 && b[s - 1] === 1) s--;
  if (s === b.length) return 0;
  let inner = 1;
  for (let i = 0; i < out.length; i++) {
    if (i < s) {
      if (b[i] !== out[i]) return 0;
    } else inner *= out[i];
  }
  return inner;
}

/** Fast path: a has the result's shape, each element of b applies to a contiguous run of `inner` elements of a. */
function binaryCols(op: number, a: Tensor, b: Tensor, inner: number): Tensor {
  const A = a.data;
  const B = b.data;
  const n = A.length;
  const nb = B.length;
  const y = new Float32Array(n);
  for (let r = 0, o = 0; r < nb; r++, o += inner) {
    const v = B[r];
    const end = o + inner;
    if (op === ADD) for (let i = o; i < end; i++) y[i] = A[i] + v;
    else if (op === SUB) for (let i = o; i < end; i++) y[i] = A[i] - v;
    else if (op === MUL) for (let i = o; i < end; i++) y[i] = A[i] * v;
    else for (let i = o; i < end; i++) y[i] = A[i] / v;
  }
  return result(y, [...a.shape], [a, b], (out) => {
    const g = out.grad!;
    if (a.requiresGrad) {
      if (op === ADD || op === SUB) a.accumulate(g);
      else {
        const ga = new Float32Array(n);
        for (let r = 0, o = 0; r < nb; r++, o += inner) {
          const v = B[r];
          const end = o + inner;
          if (op === MUL) for (let i = o; i < end; i++) ga[i] = g[i] * v;
          else for (let i = o; i < end; i++) ga[i] = g[i] / v;
        }
        giveGrad(a, ga);
      }
    }
    if (b.requiresGrad) {
      const gb = new Float32Array(nb);
      for (let r = 0, o = 0; r < nb; r++, o += inner) {
        const end = o + inner;
        let acc = 0;
        if (op === ADD) for (let i = o; i < end; i++) acc += g[i];
        else if (op === SUB) for (let i = o; i < end; i++) acc -= g[i];
        else if (op === MUL) for (let i = o; i < end; i++) acc += g[i] * A[i];
        else for (let i = o; i < end; i++) acc -= (g[i] * y[i]) / B[r];
        gb[r] = acc;
      }
      giveGrad(b, gb);
    }
  });
}

function binary(op: number, a: Tensor, b: Tensor): Tensor {
  if (b.size > 0 && b.ndim <= a.ndim && !sameShape(a.shape, b.shape) && isTrailing(a.shape, b.shape)) return binaryRows(op, a, b);
  if (b.size > 0) {
    const inner = leadingRepeat(a.shape, b.shape);
    if (inner > 0) return binaryCols(op, a, b, inner);
  }
  const shape = sameShape(a.shape, b.shape) ? [...a.shape] : broadcastShapes(a.shape, b.shape);
  const n = sizeOf(shape);
  const ia = broadcastMap(shape, a.shape);
  const ib = broadcastMap(shape, b.shape);
  const data = binaryForward(op, a.data, b.data, n, ia, ib);
  return result(data, shape, [a, b], (out) => {
    const g = out.grad!;
    const A = a.data;
    const B = b.data;
    if (op === ADD || op === SUB) {
      if (a.requiresGrad) route(a, g, ia, false);
      if (b.requiresGrad) {
        if (op === ADD) route(b, g, ib, false);
        else {
          const gb = new Float32Array(n);
          for (let i = 0; i < n; i++) gb[i] = -g[i];
          route(b, gb, ib, true);
        }
      }
      return;
    }
    const ma = ia ?? identity(n);
    const mb = ib ?? identity(n);
    if (op === MUL) {
      if (a.requiresGrad) {
        const ga = new Float32Array(n);
        for (let i = 0; i < n; i++) ga[i] = g[i] * B[mb[i]];
        route(a, ga, ia, true);
      }
      if (b.requiresGrad) {
        const gb = new Float32Array(n);
        for (let i = 0; i < n; i++) gb[i] = g[i] * A[ma[i]];
        route(b, gb, ib, true);
      }
    } else {
      if (a.requiresGrad) {
        const ga = new Float32Array(n);
        for (let i = 0; i < n; i++) ga[i] = g[i] / B[mb[i]];
        route(a, ga, ia, true);
      }
      if (b.requiresGrad) {
        const gb = new Float32Array(n);
        const Y = out.data;
        for (let i = 0; i < n; i++) gb[i] = (-g[i] * Y[i]) / B[mb[i]];
        route(b, gb, ib, true);
      }
    }
  });
}

/** a + b (broadcasting). */
export function add(a: Tensor, b: Tensor): Tensor {
  return binary(ADD, a, b);
}
/** a − b (broadcasting). */
export function sub(a: Tensor, b: Tensor): Tensor {
  return binary(SUB, a, b);
}
/** a ⊙ b (broadcasting). */
export function mul(a: Tensor, b: Tensor): Tensor {
  return binary(MUL, a, b);
}
/** a / b (broadcasting). */
export function div(a: Tensor, b: Tensor): Tensor {
  return binary(DIV, a, b);
}

/** a · s for a constant s. */
export function scale(a: Tensor, s: number): Tensor {
  const A = a.data;
  const n = A.length;
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) y[i] = A[i] * s;
  return result(y, [...a.shape], [a], (out) => {
    const g = out.grad!;
    const ga = new Float32Array(n);
    for (let i = 0; i < n; i++) ga[i] = g[i] * s;
    giveGrad(a, ga);
  });
}

/** −a. */
export function neg(a: Tensor): Tensor {
  return scale(a, -1);
}

/** a + s for a constant s. */
export function addScalar(a: Tensor, s: number): Tensor {
  const A = a.data;
  const n = A.length;
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) y[i] = A[i] + s;
  return result(y, [...a.shape], [a], (out) => a.accumulate(out.grad!));
}

export function exp(a: Tensor): Tensor {
  const A = a.data;
  const n = A.length;
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) y[i] = Math.exp(A[i]);
  return result(y, [...a.shape], [a], (out) => {
    const g = out.grad!;
    const ga = new Float32Array(n);
    for (let i = 0; i < n; i++) ga[i] = g[i] * y[i];
    giveGrad(a, ga);
  });
}

export function log(a: Tensor): Tensor {
  const A = a.data;
  const n = A.length;
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) y[i] = Math.log(A[i]);
  return result(y, [...a.shape], [a], (out) => {
    const g = out.grad!;
    const ga = new Float32Array(n);
    for (let i = 0; i < n; i++) ga[i] = g[i] / A[i];
    giveGrad(a, ga);
  });
}

export function relu(a: Tensor): Tensor {
  const A = a.data;
  const n = A.length;
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) y[i] = A[i] > 0 ? A[i] : 0;
  return result(y, [...a.shape], [a], (out) => {
    const g = out.grad!;
    const ga = new Float32Array(n);
    for (let i = 0; i < n; i++) ga[i] = A[i] > 0 ? g[i] : 0;
    giveGrad(a, ga);
  });
}

const INV_SQRT2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** GELU, exact erf form: x·Φ(x) (torch's default `approximate='none'`). */
export function gelu(a: Tensor): Tensor {
  const A = a.data;
  const n = A.length;
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const x = A[i];
    y[i] = 0.5 * x * (1 + erf(x * INV_SQRT2));
  }
  return result(y, [...a.shape], [a], (out) => {
    const g = out.grad!;
    const ga = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const x = A[i];
      const cdf = 0.5 * (1 + erf(x * INV_SQRT2));
      ga[i] = g[i] * (cdf + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x));
    }
    giveGrad(a, ga);
  });
}

export function tanh(a: Tensor): Tensor {
  const A = a.data;
  const n = A.length;
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) y[i] = Math.tanh(A[i]);
  return result(y, [...a.shape], [a], (out) => {
    const g = out.grad!;
    const ga = new Float32Array(n);
    for (let i = 0; i < n; i++) ga[i] = g[i] * (1 - y[i] * y[i]);
    giveGrad(a, ga);
  });
}

export function sigmoid(a: Tensor): Tensor {
  const A = a.data;
  const n = A.length;
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const x = A[i];
    if (x >= 0) y[i] = 1 / (1 + Math.exp(-x));
    else {
      const e = Math.exp(x);
      y[i] = e / (1 + e);
    }
  }
  return result(y, [...a.shape], [a], (out) => {
    const g = out.grad!;
    const ga = new Float32Array(n);
    for (let i = 0; i < n; i++) ga[i] = g[i] * y[i] * (1 - y[i]);
    giveGrad(a, ga);
  });
}

/** Sorted, normalised, unique axes; `undefined` means all. */
function normAxes(axis: number | number[] | undefined, ndim: number): number[] {
  if (axis === undefined) return Array.from({ length: ndim }, (_, i) => i);
  const list = typeof axis === 'number' ? [axis] : axis;
  const set = new Set(list.map((a) => normAxis(a, ndim)));
  return [...set].sort((x, y) => x - y);
}

/**
 * Sum over `axis` (a number, a list, or all when omitted). With `keepDims` the reduced axes stay with size 1; summing
 * everything without keepDims gives shape [].
 */
export function sum(a: Tensor, axis?: number | number[], keepDims = false): Tensor {
  return reduceSum(a, axis, keepDims, 1);
}

/**
 * Σ over the last axis of a ⊙ b (a and b of the same shape [..., n]) → [...]; the fused form of
 * `sum(mul(a, b), -1)`, with one pass forward and one per operand backward.
 */
export function rowDot(a: Tensor, b: Tensor): Tensor {
  if (!sameShape(a.shape, b.shape) || a.ndim < 1) {
    throw new UserError(`rowDot: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] differ`, 'pass two tensors of the same shape [..., n]');
  }
  const A = a.data;
  const B = b.data;
  const n = a.shape[a.ndim - 1];
  const rows = n === 0 ? 0 : A.length / n;
  const y = new Float32Array(rows);
  for (let r = 0, o = 0; r < rows; r++, o += n) {
    let s = 0;
    for (let i = o; i < o + n; i++) s += A[i] * B[i];
    y[r] = s;
  }
  return result(y, a.shape.slice(0, -1), [a, b], (out) => {
    const g = out.grad!;
    for (const [t, other] of [[a, B], [b, A]] as const) {
      if (!t.requiresGrad) continue;
      const gt = new Float32Array(A.length);
      for (let r = 0, o = 0; r < rows; r++, o += n) {
        const v = g[r];
        for (let i = o; i < o + n; i++) gt[i] = v * other[i];
      }
      giveGrad(t, gt);
    }
  });
}

/** Mean over `axis`; same signature as {@link sum}. */
export function mean(a: Tensor, axis?: number | number[], keepDims = false): Tensor {
  const axes = normAxes(axis, a.ndim);
  let count = 1;
  for (const ax of axes) count *= a.shape[ax];
  return reduceSum(a, axes, keepDims, count === 0 ? NaN : 1 / count);
}

function reduceSum(a: Tensor, axis: number | number[] | undefined, keepDims: boolean, factor: number): Tensor {
  const axes = normAxes(axis, a.ndim);
  const A = a.data;
  const n = A.length;
  const isReduced = new Array<boolean>(a.ndim).fill(false);
  for (const ax of axes) isReduced[ax] = true;
  const keepShape = a.shape.map((d, i) => (isReduced[i] ? 1 : d));
  const outShape = keepDims ? keepShape : a.shape.filter((_, i) => !isReduced[i]);
  const m = sizeOf(keepShape);
  const y = new Float32Array(m);
  let map: Int32Array | null = null;
  if (m === 1) {
    let s = 0;
    for (let i = 0; i < n; i++) s += A[i];
    y[0] = s * factor;
  } else if (axes.length === 1) {
    const [outer, len, inner] = splitAt(a.shape, axes[0]);
    if (inner === 1) {
      for (let o = 0; o < outer; o++) {
        let s = 0;
        const base = o * len;
        for (let j = 0; j < len; j++) s += A[base + j];
        y[o] = s * factor;
      }
    } else {
      const acc = new Float64Array(inner);
      for (let o = 0; o < outer; o++) {
        acc.fill(0);
        for (let j = 0; j < len; j++) {
          const base = (o * len + j) * inner;
          for (let t = 0; t < inner; t++) acc[t] += A[base + t];
        }
        for (let t = 0; t < inner; t++) y[o * inner + t] = acc[t] * factor;
      }
    }
  } else {
    map = broadcastMap(a.shape, keepShape);
    if (!map) {
      for (let i = 0; i < n; i++) y[i] = A[i] * factor;
    } else {
      const acc = new Float64Array(m);
      for (let i = 0; i < n; i++) acc[map[i]] += A[i];
      for (let i = 0; i < m; i++) y[i] = acc[i] * factor;
    }
  }
  return result(y, outShape, [a], (out) => {
    const g = out.grad!;
    const ga = new Float32Array(n);
    if (m === 1) {
      const v = g[0] * factor;
      ga.fill(v);
    } else {
      const mp = map ?? broadcastMap(a.shape, keepShape);
      if (!mp) for (let i = 0; i < n; i++) ga[i] = g[i] * factor;
      else for (let i = 0; i < n; i++) ga[i] = g[mp[i]] * factor;
    }
    giveGrad(a, ga);
  });
}

/** Reshape (shares the data buffer). One dimension may be -1. */
export function reshape(a: Tensor, shape: number[]): Tensor {
  const s = [...shape];
  const neg1 = s.indexOf(-1);
  if (neg1 >= 0) {
    if (s.indexOf(-1, neg1 + 1) >= 0) throw new UserError(`reshape: more than one -1 in [${shape.join(', ')}]`, 'give at most one -1');
    let rest = 1;
    for (let i = 0; i < s.length; i++) if (i !== neg1) rest *= s[i];
    s[neg1] = rest === 0 ? 0 : a.size / rest;
  }
  if (sizeOf(s) !== a.size || s.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new UserError(`reshape: cannot view shape [${a.shape.join(', ')}] as [${shape.join(', ')}]`, 'keep the number of elements');
  }
  return result(a.data, s, [a], (out) => a.accumulate(out.grad!));
}

/** Transpose raw data of shape `shape` by `perm` (out axis i = in axis perm[i]). */
export function permuteData(A: Float32Array, shape: readonly number[], perm: readonly number[]): Float32Array {
  const nd = shape.length;
  const n = A.length;
  const out = new Float32Array(n);
  if (n === 0) return out;
  let identityPerm = true;
  for (let i = 0; i < nd; i++) if (perm[i] !== i) identityPerm = false;
  if (identityPerm) {
    out.set(A);
    return out;
  }
  // fast path: swap of the last two axes (batched 2-D transpose, blocked)
  let lastTwo = nd >= 2 && perm[nd - 1] === nd - 2 && perm[nd - 2] === nd - 1;
  for (let i = 0; i < nd - 2 && lastTwo; i++) if (perm[i] !== i) lastTwo = false;
  if (lastTwo) {
    const r = shape[nd - 2];
    const c = shape[nd - 1];
    const batch = n / (r * c);
    for (let b = 0; b < batch; b++) transpose2d(A, b * r * c, out, b * r * c, r, c);
    return out;
  }
  const inStrides = stridesOf(shape);
  const outShape = perm.map((p) => shape[p]);
  const st = perm.map((p) => inStrides[p]);
  const last = outShape[nd - 1];
  const ls = st[nd - 1];
  const idx = new Int32Array(nd);
  let base = 0;
  for (let o = 0; o < n; o += last) {
    for (let j = 0; j < last; j++) out[o + j] = A[base + j * ls];
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]++;
      base += st[d];
      if (idx[d] < outShape[d]) break;
      base -= st[d] * outShape[d];
      idx[d] = 0;
    }
  }
  return out;
}

/** Permute axes; the default swaps the last two. */
export function transpose(a: Tensor, perm?: number[]): Tensor {
  const nd = a.ndim;
  let p: number[];
  if (perm === undefined) {
    if (nd < 2) return reshape(a, [...a.shape]);
    p = Array.from({ length: nd }, (_, i) => i);
    p[nd - 2] = nd - 1;
    p[nd - 1] = nd - 2;
  } else {
    if (perm.length !== nd) throw new UserError(`transpose: perm [${perm.join(', ')}] does not match ${nd} dimensions`, 'give one entry per axis');
    p = perm.map((x) => normAxis(x, nd));
    if (new Set(p).size !== nd) throw new UserError(`transpose: perm [${perm.join(', ')}] is not a permutation`, 'list every axis once');
  }
  const outShape = p.map((d) => a.shape[d]);
  const data = permuteData(a.data, a.shape, p);
  const inv = new Array<number>(nd);
  for (let i = 0; i < nd; i++) inv[p[i]] = i;
  return result(data, outShape, [a], (out) => giveGrad(a, permuteData(out.grad!, outShape, inv)));
}
