/** Gather / concatenate along an axis, and the gradient-free top-k mask. */
import { UserError } from '../errors.js';
import { normAxis, sameShape, splitAt } from './broadcast.js';
import { giveGrad } from './grad.js';
import { result, Tensor } from './tensor.js';

/** Pick `indices` along `axis` (repeats allowed; backward scatter-adds). */
export function indexSelect(a: Tensor, axis: number, indices: Int32Array): Tensor {
  const ax = normAxis(axis, a.ndim);
  const [outer, len, inner] = splitAt(a.shape, ax);
  const L = indices.length;
  for (let i = 0; i < L; i++) {
    if (indices[i] < 0 || indices[i] >= len) {
      throw new UserError(`indexSelect: index ${indices[i]} is out of range for axis ${axis} of size ${len}`, `use indices in [0, ${len - 1}]`);
    }
  }
  const A = a.data;
  const y = new Float32Array(outer * L * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < L; i++) {
      const src = (o * len + indices[i]) * inner;
      const dst = (o * L + i) * inner;
      if (inner < 64) for (let t = 0; t < inner; t++) y[dst + t] = A[src + t];
      else y.set(A.subarray(src, src + inner), dst);
    }
  }
  const shape = [...a.shape];
  shape[ax] = L;
  return result(y, shape, [a], (out) => {
    const g = out.grad!;
    const ga = new Float32Array(A.length);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < L; i++) {
        const dst = (o * len + indices[i]) * inner;
        const src = (o * L + i) * inner;
        for (let t = 0; t < inner; t++) ga[dst + t] += g[src + t];
      }
    }
    giveGrad(a, ga);
  });
}

/** Concatenate along `axis`; all other dimensions must agree. */
export function concat(tensors: Tensor[], axis: number): Tensor {
  if (tensors.length === 0) throw new UserError('concat: no tensors given', 'pass at least one tensor');
  const first = tensors[0];
  const ax = normAxis(axis, first.ndim);
  let total = 0;
  for (const t of tensors) {
    const s1 = t.shape.filter((_, i) => i !== ax);
    const s0 = first.shape.filter((_, i) => i !== ax);
    if (t.ndim !== first.ndim || !sameShape(s0, s1)) {
      throw new UserError(`concat: shapes [${first.shape.join(', ')}] and [${t.shape.join(', ')}] differ off axis ${axis}`, 'make all other dimensions equal');
    }
    total += t.shape[ax];
  }
  const [outer, , inner] = splitAt(first.shape, ax);
  const y = new Float32Array(outer * total * inner);
  const offsets: number[] = [];
  let off = 0;
  for (const t of tensors) {
    offsets.push(off);
    const w = t.shape[ax] * inner;
    for (let o = 0; o < outer; o++) y.set(t.data.subarray(o * w, (o + 1) * w), o * total * inner + off * inner);
    off += t.shape[ax];
  }
  const shape = [...first.shape];
  shape[ax] = total;
  return result(y, shape, tensors, (out) => {
    const g = out.grad!;
    tensors.forEach((t, idx) => {
      if (!t.requiresGrad) return;
      const w = t.shape[ax] * inner;
      const gt = new Float32Array(t.size);
      for (let o = 0; o < outer; o++) gt.set(g.subarray(o * total * inner + offsets[idx] * inner, o * total * inner + offsets[idx] * inner + w), o * w);
      giveGrad(t, gt);
    });
  });
}

/**
 * 0/1 mask of the k largest (or smallest) entries along `axis`; ties go to the lower index, NaN ranks last. No
 * gradient. Partial selection: one pass per row keeps the current top k (by value, then index) in a small sorted
 * buffer, so a row costs O(len·k) in the worst case and about O(len) when few entries displace the k-th.
 */
/**
 * Offer value v at index j to a running top-k buffer (values descending, the earlier index first on ties; NaN ranks
 * last). j must be larger than every index already offered. Returns the new number of entries.
 */
export function topkInsert(bufV: Float64Array, bufI: Int32Array, n: number, k: number, v: number, j: number): number {
  if (v !== v) v = -Infinity;
  // j is larger than every index in the buffer, so it goes after all entries with value ≥ v
  if (n === k) {
    if (!(v > bufV[k - 1])) return n;
    n--;
  }
  let p = n;
  while (p > 0 && bufV[p - 1] < v) {
    bufV[p] = bufV[p - 1];
    bufI[p] = bufI[p - 1];
    p--;
  }
  bufV[p] = v;
  bufI[p] = j;
  return n + 1;
}

export function topkMask(a: Tensor, k: number, axis = -1, largest = true): Tensor {
  const ax = normAxis(axis, a.ndim);
  const [outer, len, inner] = splitAt(a.shape, ax);
  const kk = Math.max(0, Math.min(Math.floor(k), len));
  const A = a.data;
  const y = new Float32Array(A.length);
  if (kk === len) y.fill(1);
  else if (kk > 0) {
    const sign = largest ? 1 : -1;
    const bufV = new Float64Array(kk);
    const bufI = new Int32Array(kk);
    for (let o = 0; o < outer; o++) {
      for (let t = 0; t < inner; t++) {
        const base = o * len * inner + t;
        let n = 0; // entries in the buffer, sorted by value descending (earlier index first on ties)
        for (let j = 0, at = base; j < len; j++, at += inner) {
          n = topkInsert(bufV, bufI, n, kk, A[at] * sign, j);
        }
        for (let r = 0; r < kk; r++) y[base + bufI[r] * inner] = 1;
      }
    }
  }
  return new Tensor(y, [...a.shape], false);
}
