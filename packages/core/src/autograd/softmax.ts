/**
 * Normalisations along an axis: softmax, log-softmax and sparsemax (Martins & Astudillo 2016). All are computed on
 * rows gathered along `axis` (fast path when the axis is the last one) and are numerically stable (max subtracted).
 */
import { kernels, sparsemaxKernel } from '../kernels/index.js';
import { normAxis, splitAt } from './broadcast.js';
import { giveGrad } from './grad.js';
import { result, type Tensor } from './tensor.js';

export function softmax(a: Tensor, axis = -1): Tensor {
  const ax = normAxis(axis, a.ndim);
  const [outer, len, inner] = splitAt(a.shape, ax);
  if (inner === 1) return softmaxLast(a, outer, len);
  const A = a.data;
  const y = new Float32Array(A.length);
  for (let o = 0; o < outer; o++) {
    for (let t = 0; t < inner; t++) {
      const base = o * len * inner + t;
      let mx = -Infinity;
      for (let j = 0; j < len; j++) {
        const v = A[base + j * inner];
        if (v > mx) mx = v;
      }
      let s = 0;
      for (let j = 0; j < len; j++) {
        const e = Math.exp(A[base + j * inner] - mx);
        y[base + j * inner] = e;
        s += e;
      }
      const inv = 1 / s;
      for (let j = 0; j < len; j++) y[base + j * inner] *= inv;
    }
  }
  return result(y, [...a.shape], [a], (out) => {
    const g = out.grad!;
    const ga = new Float32Array(A.length);
    for (let o = 0; o < outer; o++) {
      for (let t = 0; t < inner; t++) {
        const base = o * len * inner + t;
        let dot = 0;
        for (let j = 0; j < len; j++) dot += g[base + j * inner] * y[base + j * inner];
        for (let j = 0; j < len; j++) {
          const idx = base + j * inner;
          ga[idx] = y[idx] * (g[idx] - dot);
        }
      }
    }
    giveGrad(a, ga);
  });
}

/** Softmax over contiguous rows (the last axis): no stride arithmetic, one pass per row for max, exp and scale. */
function softmaxLast(a: Tensor, rows: number, len: number): Tensor {
  const A = a.data;
  const y = new Float32Array(A.length);
  for (let base = 0, r = 0; r < rows; r++, base += len) {
    const end = base + len;
    let mx = -Infinity;
    for (let i = base; i < end; i++) if (A[i] > mx) mx = A[i];
    let s = 0;
    for (let i = base; i < end; i++) {
      const e = Math.exp(A[i] - mx);
      y[i] = e;
      s += e;
    }
    const inv = 1 / s;
    for (let i = base; i < end; i++) y[i] *= inv;
  }
  return result(y, [...a.shape], [a], (out) => {
    const g = out.grad!;
    const ga = new Float32Array(A.length);
    for (let base = 0, r = 0; r < rows; r++, base += len) {
      const end = base + len;
      let dot = 0;
      for (let i = base; i < end; i++) dot += g[i] * y[i];
      for (let i = base; i < end; i++) ga[i] = y[i] * (g[i] - dot);
    }
    giveGrad(a, ga);
  });
}

export function logSoftmax(a: Tensor, axis = -1): Tensor {
  const ax = normAxis(axis, a.ndim);
  const [outer, len, inner] = splitAt(a.shape, ax);
  const A = a.data;
  const y = new Float32Array(A.length);
  for (let o = 0; o < outer; o++) {
    for (let t = 0; t < inner; t++) {
      const base = o * len * inner + t;
      let mx = -Infinity;
      for (let j = 0; j < len; j++) {
        const v = A[base + j * inner];
        if (v > mx) mx = v;
      }
      let s = 0;
      for (let j = 0; j < len; j++) s += Math.exp(A[base + j * inner] - mx);
      const lse = mx + Math.log(s);
      for (let j = 0; j < len; j++) y[base + j * inner] = A[base + j * inner] - lse;
    }
  }
  return result(y, [...a.shape], [a], (out) => {
    const g = out.grad!;
    const ga = new Float32Array(A.length);
    for (let o = 0; o < outer; o++) {
      for (let t = 0; t < inner; t++) {
        const base = o * len * inner + t;
        let gs = 0;
        for (let j = 0; j < len; j++) gs += g[base + j * inner];
        for (let j = 0; j < len; j++) {
          const idx = base + j * inner;
          ga[idx] = g[idx] - Math.exp(y[idx]) * gs;
        }
      }
    }
    giveGrad(a, ga);
  });
}

/**
 * Sparsemax: Euclidean projection of each row onto the probability simplex. p_i = max(z_i − τ, 0) with
 * τ = (Σ_{i≤k} z₍i₎ − 1)/k over the k(z) largest entries (found by support iteration on rows of up to 64 entries, by
 * sorting on longer ones). Backward: s_i·(g_i − mean of g over the support).
 */
export function sparsemax(a: Tensor, axis = -1): Tensor {
  const ax = normAxis(axis, a.ndim);
  const [outer, len, inner] = splitAt(a.shape, ax);
  const A = a.data;
  const kern = kernels();
  const y = kern && len > 0 ? sparsemaxKernel(kern, A, outer, len, inner) : sparsemaxJs(A, outer, len, inner);
  return result(y, [...a.shape], [a], (out) => {
    const g = out.grad!;
    const ga = new Float32Array(A.length);
    for (let o = 0; o < outer; o++) {
      for (let t = 0; t < inner; t++) {
        const base = o * len * inner + t;
        let gs = 0;
        let cnt = 0;
        for (let j = 0; j < len; j++) {
          const idx = base + j * inner;
          if (y[idx] > 0) {
            gs += g[idx];
            cnt++;
          }
        }
        const gh = cnt > 0 ? gs / cnt : 0;
        for (let j = 0; j < len; j++) {
          const idx = base + j * inner;
          ga[idx] = y[idx] > 0 ? g[idx] - gh : 0;
        }
      }
    }
    giveGrad(a, ga);
  });
}

/** The JavaScript path of {@link sparsemax} (no WebAssembly SIMD). */
function sparsemaxJs(A: Float32Array, outer: number, len: number, inner: number): Float32Array {
  const y = new Float32Array(A.length);
  const row = new Float64Array(len);
  const sorted = new Float64Array(len);
  for (let o = 0; o < outer; o++) {
    for (let t = 0; t < inner; t++) {
      const base = o * len * inner + t;
      let mx = -Infinity;
      for (let j = 0; j < len; j++) {
        const v = A[base + j * inner];
        row[j] = v;
        if (v > mx) mx = v;
      }
      let tau: number;
      if (len <= 64) {
        // short rows: fixed-point iteration on the support (Michelot 1986): start from all entries, τ = (Σ_S z − 1)/|S|,
        // keep the entries above τ, repeat until the support stops shrinking (τ rises monotonically; a few passes)
        let S = 0;
        for (let j = 0; j < len; j++) {
          row[j] -= mx;
          S += row[j];
        }
        let K = len;
        tau = (S - 1) / K;
        for (;;) {
          let k2 = 0;
          let s2 = 0;
          for (let j = 0; j < len; j++) {
            if (row[j] > tau) {
              k2++;
              s2 += row[j];
            }
          }
          if (k2 === K) break;
          K = k2;
          tau = (s2 - 1) / k2;
        }
      } else {
        for (let j = 0; j < len; j++) {
          row[j] -= mx;
          sorted[j] = row[j];
        }
        sorted.sort(); // ascending; walk it from the end
        let cum = 0;
        let kz = 0;
        let cumK = 0;
        for (let r = 1; r <= len; r++) {
          const z = sorted[len - r];
          cum += z;
          if (1 + r * z > cum) {
            kz = r;
            cumK = cum;
          }
        }
        tau = (cumK - 1) / kz;
      }
      for (let j = 0; j < len; j++) {
        const p = row[j] - tau;
        y[base + j * inner] = p > 0 ? p : 0;
      }
    }
  }
  return y;
}
