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
      if (inner === 1) y[dst] = A[src];
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
 * 0/1 mask of the k largest (or smallest) entries along `axis`; ties go to the lower index. No gradient.
 */
export function topkMask(a: Tensor, k: number, axis = -1, largest = true): Tensor {
  const ax = normAxis(axis, a.ndim);
  const [outer, len, inner] = splitAt(a.shape, ax);
  const kk = Math.max(0, Math.min(Math.floor(k), len));
  const A = a.data;
  const y = new Float32Array(A.length);
  const vals = new Float64Array(len);
  const idx = new Int32Array(len);
  const sign = largest ? 1 : -1;
  const cmp = (i: number, j: number): number => {
    const x = vals[i];
    const z = vals[j];
    if (x > z) return -1;
    if (x < z) return 1;
    return i - j;
  };
  for (let o = 0; o < outer; o++) {
    for (let t = 0; t < inner; t++) {
      const base = o * len * inner + t;
      if (kk === len) {
        for (let j = 0; j < len; j++) y[base + j * inner] = 1;
        continue;
      }
      for (let j = 0; j < len; j++) {
        const v = A[base + j * inner] * sign;
        vals[j] = v !== v ? -Infinity : v; // NaN sorts last
        idx[j] = j;
      }
      idx.sort(cmp);
      for (let r = 0; r < kk; r++) y[base + idx[r] * inner] = 1;
    }
  }
  return new Tensor(y, [...a.shape], false);
}
