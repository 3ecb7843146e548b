/**
 * Batched matrix multiply with autograd: a [...batch, m, k] @ b [...batch, k, n]. Batch dimensions broadcast like
 * numpy; a 2-D b is shared across a's batch (and runs as one big [batch·m, k] @ [k, n] product). Backward:
 * dA = G·Bᵀ, dB = Aᵀ·G, via the same kernels with transposed operands (`gemmT`).
 */
import { UserError } from '../errors.js';
import { sizeOf } from '../tensor.js';
import { broadcastMap, broadcastShapes } from './broadcast.js';
import { gemm, gemmT } from './gemm.js';
import { giveGrad } from './grad.js';
import { result, type Tensor } from './tensor.js';

export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim < 2 || b.ndim < 2) {
    throw new UserError(`matmul needs tensors with at least 2 dimensions, got [${a.shape.join(', ')}] and [${b.shape.join(', ')}]`, 'reshape vectors to [1, n] or [n, 1]');
  }
  const m = a.shape[a.ndim - 2];
  const k = a.shape[a.ndim - 1];
  const k2 = b.shape[b.ndim - 2];
  const n = b.shape[b.ndim - 1];
  if (k !== k2) {
    throw new UserError(`matmul: inner dimensions differ: [${a.shape.join(', ')}] @ [${b.shape.join(', ')}]`, 'the last axis of a must equal the second-to-last axis of b');
  }
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const A = a.data;
  const B = b.data;
  if (batchB.length === 0) {
    // shared right operand: one [rows, k] @ [k, n]
    const rows = sizeOf(batchA) * m;
    const C = new Float32Array(rows * n);
    gemm(A, 0, B, 0, C, 0, rows, k, n);
    return result(C, [...batchA, m, n], [a, b], (out) => {
      const G = out.grad!;
      if (a.requiresGrad) {
        const gA = new Float32Array(rows * k);
        gemmT(false, true, G, 0, B, 0, gA, 0, rows, n, k);
        giveGrad(a, gA);
      }
      if (b.requiresGrad) {
        const gB = new Float32Array(k * n);
        gemmT(true, false, A, 0, G, 0, gB, 0, k, rows, n);
        giveGrad(b, gB);
      }
    });
  }
  const batch = broadcastShapes(batchA, batchB);
  const nb = sizeOf(batch);
  const mapA = broadcastMap(batch, batchA);
  const mapB = broadcastMap(batch, batchB);
  const sa = m * k;
  const sb = k * n;
  const sc = m * n;
  const C = new Float32Array(nb * sc);
  for (let t = 0; t < nb; t++) {
    const ia = mapA ? mapA[t] : t;
    const ib = mapB ? mapB[t] : t;
    gemm(A, ia * sa, B, ib * sb, C, t * sc, m, k, n);
  }
  return result(C, [...batch, m, n], [a, b], (out) => {
    const G = out.grad!;
    if (a.requiresGrad) {
      const gA = new Float32Array(A.length);
      for (let t = 0; t < nb; t++) {
        const ia = mapA ? mapA[t] : t;
        const ib = mapB ? mapB[t] : t;
        gemmT(false, true, G, t * sc, B, ib * sb, gA, ia * sa, m, n, k);
      }
      giveGrad(a, gA);
    }
    if (b.requiresGrad) {
      const gB = new Float32Array(B.length);
      for (let t = 0; t < nb; t++) {
        const ia = mapA ? mapA[t] : t;
        const ib = mapB ? mapB[t] : t;
        gemmT(true, false, A, ia * sa, G, t * sc, gB, ib * sb, k, m, n);
      }
      giveGrad(b, gB);
    }
  });
}

/**
 * a @ bᵀ without materialising the transpose: a [...batch, m, k], b [...batch, n, k] (same batch dimensions) or a 2-D
 * b [n, k] shared across a's batch → [...batch, m, n]. Same values as `matmul(a, transpose(b))` up to float32
 * rounding. Backward: dA = G·B, dB = Gᵀ·A.
 */
export function matmulNT(a: Tensor, b: Tensor): Tensor {
  if (a.ndim < 2 || b.ndim < 2) {
    throw new UserError(`matmulNT needs tensors with at least 2 dimensions, got [${a.shape.join(', ')}] and [${b.shape.join(', ')}]`, 'reshape vectors to [1, n] or [n, 1]');
  }
  const m = a.shape[a.ndim - 2];
  const k = a.shape[a.ndim - 1];
  const n = b.shape[b.ndim - 2];
  if (b.shape[b.ndim - 1] !== k) {
    throw new UserError(`matmulNT: inner dimensions differ: [${a.shape.join(', ')}] @ [${b.shape.join(', ')}]ᵀ`, 'the last axes of a and b must be equal');
  }
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const shared = batchB.length === 0;
  if (!shared && (batchA.length !== batchB.length || batchA.some((v, i) => v !== batchB[i]))) {
    throw new UserError(`matmulNT: batch dimensions [${batchA.join(', ')}] and [${batchB.join(', ')}] differ`, 'give b the same batch dimensions as a, or a 2-D b');
  }
  const A = a.data;
  const B = b.data;
  // a shared b: one [batch·m, k] @ [k, n] product
  const nb = shared ? 1 : sizeOf(batchA);
  const rows = shared ? sizeOf(batchA) * m : m;
  const sa = rows * k;
  const sb = n * k;
  const sc = rows * n;
  const C = new Float32Array(nb * sc);
  for (let t = 0; t < nb; t++) gemmT(false, true, A, t * sa, B, t * sb, C, t * sc, rows, k, n);
  return result(C, [...batchA, m, n], [a, b], (out) => {
    const G = out.grad!;
    if (a.requiresGrad) {
      const gA = new Float32Array(A.length);
      for (let t = 0; t < nb; t++) gemm(G, t * sc, B, t * sb, gA, t * sa, rows, n, k);
      giveGrad(a, gA);
    }
    if (b.requiresGrad) {
      const gB = new Float32Array(B.length);
      for (let t = 0; t < nb; t++) gemmT(true, false, G, t * sc, A, t * sa, gB, t * sb, n, rows, k);
      giveGrad(b, gB);
    }
  });
}
