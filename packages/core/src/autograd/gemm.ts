/**
 * Raw single-precision matrix-multiply kernels on Float32Array (row-major, explicit offsets), all computing
 * C += A·B with A [M, K], B [K, N], C [M, N]:
 * - `gemmWasm` (gemm-wasm.ts): WebAssembly SIMD, packed panels, 4×8 register tile — the default when available;
 * - `gemmBlocked`: plain JS, cache-blocked over K and N and register-tiled over four rows of A (i-k-j order: the
 *   innermost loop streams one contiguous row of B into four contiguous rows of C) — fallback and small sizes;
 * - `gemmNaive`: textbook triple loop, for tests and the benchmark.
 * `gemm` / `gemmT` dispatch between them; `gemmT` also takes transposed operands without materialising them.
 */
import { gemmWasm, hasWasmSimd, WASM_K_BLOCK } from './gemm-wasm.js';
import { transpose2d } from './transpose2d.js';

export type GemmBackend = 'wasm' | 'js';
let backend: GemmBackend = hasWasmSimd ? 'wasm' : 'js';

/** Select the kernel (`wasm` needs WebAssembly SIMD; falls back to `js` otherwise). Returns the one in effect. */
export function setGemmBackend(b: GemmBackend): GemmBackend {
  backend = b === 'wasm' && hasWasmSimd ? 'wasm' : 'js';
  return backend;
}
export function getGemmBackend(): GemmBackend {
  return backend;
}

/** Up to this many multiply-adds the JS path runs transposed products directly on the stored layout. */
const SMALL_DIRECT = 1 << 16;

/** Below this many multiply-adds the packing of the SIMD path costs more than it saves. */
const WASM_MIN_WORK = 2048;
/** With a shorter inner dimension the packing (a copy of A and C per call) costs more than the JS kernel's work. */
const WASM_MIN_K = 8;

/**
 * Whether `gemm` runs an [M, K]·[K, N] product on the SIMD kernel with the whole inner dimension in one K block: each
 * output is then Σ_k in order from +0 with float32 multiplies and adds, which fused kernels (e.g. the MLP's dense_rows)
 * reproduce bit for bit.
 */
export function simdGemmOnePass(M: number, K: number, N: number): boolean {
  return backend === 'wasm' && M * K * N >= WASM_MIN_WORK && K >= WASM_MIN_K && K <= WASM_K_BLOCK;
}

/** C += A·B (A [M, K], B [K, N], row-major at the given offsets). */
export function gemm(A: Float32Array, aOff: number, B: Float32Array, bOff: number, C: Float32Array, cOff: number, M: number, K: number, N: number): void {
  if (M === 0 || N === 0 || K === 0) return;
  if (backend === 'wasm' && M * K * N >= WASM_MIN_WORK && K >= WASM_MIN_K && gemmWasm(A, aOff, K, 1, B, bOff, N, 1, C, cOff, M, K, N)) return;
  gemmBlocked(A, aOff, B, bOff, C, cOff, M, K, N);
}

/**
 * C += op(A)·op(B) where op(A) is [M, K] (stored [K, M] when `transA`) and op(B) is [K, N] (stored [N, K] when
 * `transB`). The SIMD path folds the transposes into its packing; the JS path transposes explicitly.
 */
export function gemmT(
  transA: boolean,
  transB: boolean,
  A: Float32Array,
  aOff: number,
  B: Float32Array,
  bOff: number,
  C: Float32Array,
  cOff: number,
  M: number,
  K: number,
  N: number,
): void {
  if (M === 0 || N === 0 || K === 0) return;
  if (backend === 'wasm' && M * K * N >= WASM_MIN_WORK && K >= WASM_MIN_K) {
    const [ars, acs] = transA ? [1, M] : [K, 1];
    const [brs, bcs] = transB ? [1, K] : [N, 1];
    if (gemmWasm(A, aOff, ars, acs, B, bOff, brs, bcs, C, cOff, M, K, N)) return;
  }
  // small products: direct kernels on the stored layout (no transposed copies); large ones: transpose + blocked
  const small = M * K * N <= SMALL_DIRECT;
  if (small && transB && !transA) {
    gemmNT(A, aOff, B, bOff, C, cOff, M, K, N);
    return;
  }
  if (small && transA && !transB) {
    gemmTN(A, aOff, B, bOff, C, cOff, M, K, N);
    return;
  }
  let a = A;
  let ao = aOff;
  if (transA) {
    a = new Float32Array(M * K);
    transpose2d(A, aOff, a, 0, K, M);
    ao = 0;
  }
  let b = B;
  let bo = bOff;
  if (transB) {
    b = new Float32Array(K * N);
    transpose2d(B, bOff, b, 0, N, K);
    bo = 0;
  }
  gemmBlocked(a, ao, b, bo, C, cOff, M, K, N);
}

let ntScratch = new Float32Array(256);

/**
 * C += A·Bᵀ with A [M, K] and B stored [N, K]. Short K: B is transposed into a scratch buffer for the blocked kernel;
 * otherwise dot products of contiguous rows.
 */
export function gemmNT(A: Float32Array, aOff: number, B: Float32Array, bOff: number, C: Float32Array, cOff: number, M: number, K: number, N: number): void {
  if (K <= 16 && M >= 4) {
    if (ntScratch.length < K * N) ntScratch = new Float32Array(K * N);
    const T = ntScratch;
    transpose2d(B, bOff, T, 0, N, K);
    gemmBlocked(A, aOff, T, 0, C, cOff, M, K, N);
    return;
  }
  for (let i = 0; i < M; i++) {
    const ar = aOff + i * K;
    const cr = cOff + i * N;
    let j = 0;
    for (; j + 2 <= N; j += 2) {
      const b0 = bOff + j * K;
      const b1 = b0 + K;
      let s0 = 0;
      let s1 = 0;
      for (let k = 0; k < K; k++) {
        const a = A[ar + k];
        s0 += a * B[b0 + k];
        s1 += a * B[b1 + k];
      }
      C[cr + j] += s0;
      C[cr + j + 1] += s1;
    }
    if (j < N) {
      const b0 = bOff + j * K;
      let s0 = 0;
      for (let k = 0; k < K; k++) s0 += A[ar + k] * B[b0 + k];
      C[cr + j] += s0;
    }
  }
}

/** C += Aᵀ·B with A stored [K, M] and B [K, N]: rank-1 updates streaming rows of A and B, no transposed copy. */
export function gemmTN(A: Float32Array, aOff: number, B: Float32Array, bOff: number, C: Float32Array, cOff: number, M: number, K: number, N: number): void {
  for (let k = 0; k < K; k++) {
    const ar = aOff + k * M;
    const br = bOff + k * N;
    for (let i = 0; i < M; i++) {
      const a = A[ar + i];
      const cr = cOff + i * N;
      for (let j = 0; j < N; j++) C[cr + j] += a * B[br + j];
    }
  }
}

/** JS kernel block sizes: a KC×NC panel of B (64 KiB of float32) stays in L2 while all rows of A stream past it. */
const KC = 128;
const NC = 128;

export function gemmBlocked(
  A: Float32Array,
  aOff: number,
  B: Float32Array,
  bOff: number,
  C: Float32Array,
  cOff: number,
  M: number,
  K: number,
  N: number,
): void {
  for (let k0 = 0; k0 < K; k0 += KC) {
    const k1 = k0 + KC < K ? k0 + KC : K;
    for (let j0 = 0; j0 < N; j0 += NC) {
      const j1 = j0 + NC < N ? j0 + NC : N;
      let i = 0;
      for (; i + 4 <= M; i += 4) {
        const c0 = cOff + i * N;
        const c1 = c0 + N;
        const c2 = c1 + N;
        const c3 = c2 + N;
        const a0r = aOff + i * K;
        const a1r = a0r + K;
        const a2r = a1r + K;
        const a3r = a2r + K;
        let k = k0;
        for (; k + 2 <= k1; k += 2) {
          const a00 = A[a0r + k];
          const a10 = A[a1r + k];
          const a20 = A[a2r + k];
          const a30 = A[a3r + k];
          const a01 = A[a0r + k + 1];
          const a11 = A[a1r + k + 1];
          const a21 = A[a2r + k + 1];
          const a31 = A[a3r + k + 1];
          const b0 = bOff + k * N;
          const b1 = b0 + N;
          for (let j = j0; j < j1; j++) {
            const x = B[b0 + j];
            const y = B[b1 + j];
            C[c0 + j] += a00 * x + a01 * y;
            C[c1 + j] += a10 * x + a11 * y;
            C[c2 + j] += a20 * x + a21 * y;
            C[c3 + j] += a30 * x + a31 * y;
          }
        }
        for (; k < k1; k++) {
          const a0 = A[a0r + k];
          const a1 = A[a1r + k];
          const a2 = A[a2r + k];
          const a3 = A[a3r + k];
          const b0 = bOff + k * N;
          for (let j = j0; j < j1; j++) {
            const x = B[b0 + j];
            C[c0 + j] += a0 * x;
            C[c1 + j] += a1 * x;
            C[c2 + j] += a2 * x;
            C[c3 + j] += a3 * x;
          }
        }
      }
      for (; i < M; i++) {
        const c0 = cOff + i * N;
        const a0r = aOff + i * K;
        for (let k = k0; k < k1; k++) {
          const a0 = A[a0r + k];
          const b0 = bOff + k * N;
          for (let j = j0; j < j1; j++) C[c0 + j] += a0 * B[b0 + j];
        }
      }
    }
  }
}

/** Reference triple loop (i-j-k, dot products down columns of B): C += A·B. For tests and the benchmark. */
export function gemmNaive(
  A: Float32Array,
  aOff: number,
  B: Float32Array,
  bOff: number,
  C: Float32Array,
  cOff: number,
  M: number,
  K: number,
  N: number,
): void {
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += A[aOff + i * K + k] * B[bOff + k * N + j];
      C[cOff + i * N + j] += s;
    }
  }
}
