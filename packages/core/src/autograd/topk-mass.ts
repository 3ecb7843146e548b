/**
 * SOP's group binarisation in one pass per row: attention a = softmax(logits) over the last axis, the 0/1 mask M of
 * its k largest (or smallest) entries, and the scale c = 2·Σ_j a_j·M_j − 1. Same values as
 * `softmax` → `topkMask` → `addScalar(scale(rowDot(a, M), 2), -1)` (the top-k mass is summed in index order, as
 * rowDot does), without the intermediate tensors and passes. The values come from the WebAssembly SIMD kernel
 * (`kernels/`, float32 exp within 2 ulp) when the runtime has it, else from the JavaScript loop (Math.exp).
 */
import { UserError } from '../errors.js';
import { giveGrad } from './grad.js';
import { result, Tensor } from './tensor.js';
import { topkInsert } from './indexing.js';
import { kernels, topkMassKernel } from '../kernels/index.js';

export interface TopkMass {
  /** softmax(logits) over the last axis; carries no graph (the gradient path is `scales`). */
  attention: Tensor;
  /** 0/1 mask of the top-k entries per row (ties to the lower index, NaN last); no gradient. */
  masks: Tensor;
  /** c = 2·Σ_top a − 1 per row, shape logits.shape[:-1]; differentiable w.r.t. the logits. */
  scales: Tensor;
}

/** Fused softmax + top-k mask + scale over the last axis of `logits` ([..., n]); `k` is clamped to [0, n]. */
export function topkMass(logits: Tensor, k: number, largest = true): TopkMass {
  if (logits.ndim < 1) throw new UserError('topkMass needs at least one dimension', 'pass logits of shape [..., n]');
  const len = logits.shape[logits.ndim - 1];
  const rows = len === 0 ? 0 : logits.size / len;
  const kk = Math.max(0, Math.min(Math.floor(k), len));
  const L = logits.data;
  const kern = kernels();
  const { a, M, c } = kern && len > 0 ? topkMassKernel(kern, L, len, kk, largest) : topkMassJs(L, rows, len, kk, largest);
  const lead = logits.shape.slice(0, -1);
  const attention = new Tensor(a, [...logits.shape], false);
  const masks = new Tensor(M, [...logits.shape], false);
  // dc/dl_i = 2·a_i·(M_i − s) with s = Σ_j a_j M_j = (c + 1)/2
  const scales = result(c, lead, [logits], (out) => {
    const g = out.grad!;
    const gl = new Float32Array(L.length);
    for (let r = 0, base = 0; r < rows; r++, base += len) {
      const gr = 2 * g[r];
      let s = 0;
      for (let i = base; i < base + len; i++) s += a[i] * M[i];
      for (let i = base; i < base + len; i++) gl[i] = gr * a[i] * (M[i] - s);
    }
    giveGrad(logits, gl);
  });
  return { attention, masks, scales };
}

/** The JavaScript path of {@link topkMass} (no WebAssembly SIMD): softmax in float64 with Math.exp. */
function topkMassJs(L: Float32Array, rows: number, len: number, kk: number, largest: boolean): { a: Float32Array; M: Float32Array; c: Float32Array } {
  const a = new Float32Array(L.length);
  const M = new Float32Array(L.length);
  const c = new Float32Array(rows);
  const sign = largest ? 1 : -1;
  const bufV = new Float64Array(Math.max(1, kk));
  const bufI = new Int32Array(Math.max(1, kk));
  for (let r = 0, base = 0; r < rows; r++, base += len) {
    const end = base + len;
    // softmax
    let mx = -Infinity;
    for (let i = base; i < end; i++) if (L[i] > mx) mx = L[i];
    let s = 0;
    for (let i = base; i < end; i++) {
      const e = Math.exp(L[i] - mx);
      a[i] = e;
      s += e;
    }
    const inv = 1 / s;
    // normalise and select the top k in the same pass (buffer sorted by value desc, earlier index first on ties)
    let n = 0;
    for (let j = 0, i = base; i < end; j++, i++) {
      const ai = a[i] * inv;
      a[i] = ai;
      if (kk === 0 || kk === len) continue;
      n = topkInsert(bufV, bufI, n, kk, Math.fround(ai) * sign, j);
    }
    if (kk === len) M.fill(1, base, end);
    else for (let t = 0; t < kk; t++) M[base + bufI[t]] = 1;
    // Σ_j a_j·M_j in index order (float32 products, like rowDot)
    let mass = 0;
    for (let i = base; i < end; i++) mass += a[i] * M[i];
    c[r] = Math.fround(Math.fround(mass) * 2) - 1;
  }
  return { a, M, c };
}
