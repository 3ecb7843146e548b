/**
 * WebAssembly SIMD (f32x4) matrix-multiply micro-kernel, assembled at load time from the opcode list below (no build
 * step, no binary blob). Operands are packed into the module's memory: A as [M/R][K][R] (R rows interleaved), B as
 * [N/8][K][8] (eight columns interleaved), so the kernel streams both contiguously while holding an R×8 tile of C in
 * 2R v128 registers over the whole K loop. Packing also absorbs transposes (any row/column strides) and zero-pads
 * M to a multiple of R and N to a multiple of 8. Falls back (returns false) when the runtime lacks WebAssembly SIMD.
 */

import { wasmExports } from '../kernels/wasm.js';

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}
function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}
function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}
function str(s: string): number[] {
  const b = [...Buffer.from(s, 'utf8')];
  return [...uleb(b.length), ...b];
}

// opcodes
const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
const i32 = (v: number) => [0x41, ...sleb(v)];
const ADD = 0x6a;
const MUL = 0x6c;
const GE_U = 0x4f;
const EQZ = 0x45;
const SUB = 0x6b;
const block = [0x02, 0x40];
const loop = [0x03, 0x40];
const END = 0x0b;
const br = (l: number) => [0x0c, ...uleb(l)];
const brIf = (l: number) => [0x0d, ...uleb(l)];
const simd = (op: number) => [0xfd, ...uleb(op)];
const v128load = (off: number) => [...simd(0x00), 4, ...uleb(off)];
const v128store = (off: number) => [...simd(0x0b), 4, ...uleb(off)];
const load32splat = (off: number) => [...simd(0x09), 2, ...uleb(off)];
const v128zero = [...simd(0x0c), ...new Array<number>(16).fill(0)];
const F32X4_ADD = simd(0xe4);
const F32X4_MUL = simd(0xe6);

/**
 * The kernel for an R×8 register tile: kernel(pA, pB, pC, Mr, K, Nq) computes, for every tile (i-panel iq < Mr,
 * j-panel jq < Nq), C[iq·R .. +R, jq·8 .. +8] = Σ_k A_packed[iq][k][0..R) ⊗ B_packed[jq][k][0..8), and stores it
 * row-major into C (row length Nq·8). j-panels are the outer loop so one B panel (K×8) stays in L1 while the A panels
 * stream past it. R = 6 uses 12 accumulators + 3 temporaries (fits the 16 SIMD registers of x86-64).
 */
function kernelModule(R: number): Uint8Array {
  // params
  const pA = 0;
  const pB = 1;
  const pC = 2;
  const Mr = 3;
  const K = 4;
  const Nq = 5;
  // i32 locals
  const rowBytes = 6;
  const jq = 7;
  const iq = 8;
  const ap = 9;
  const bp = 10;
  const k = 11;
  const cp = 12;
  // v128 locals
  const acc = Array.from({ length: 2 * R }, (_, i) => 13 + i);
  const b0 = 13 + 2 * R;
  const b1 = b0 + 1;
  const av = b0 + 2;
  const rows = Array.from({ length: R }, (_, r) => r);
  const fma = (a: number, b: number) => [...get(a), ...get(av), ...get(b), ...F32X4_MUL, ...F32X4_ADD, ...set(a)];
  const code: number[] = [
    ...get(Nq), ...i32(32), MUL, ...set(rowBytes),
    ...i32(0), ...set(jq),
    ...block, ...loop,
    ...get(jq), ...get(Nq), GE_U, ...brIf(1),
    ...i32(0), ...set(iq),
    ...block, ...loop,
    ...get(iq), ...get(Mr), GE_U, ...brIf(1),
    ...acc.flatMap((a) => [...v128zero, ...set(a)]),
    ...get(pA), ...get(iq), ...get(K), MUL, ...i32(4 * R), MUL, ADD, ...set(ap),
    ...get(pB), ...get(jq), ...get(K), MUL, ...i32(32), MUL, ADD, ...set(bp),
    ...get(K), ...set(k),
    ...block,
    ...get(k), EQZ, ...brIf(0),
    ...loop,
    ...get(bp), ...v128load(0), ...set(b0),
    ...get(bp), ...v128load(16), ...set(b1),
    ...rows.flatMap((r) => [...get(ap), ...load32splat(4 * r), ...set(av), ...fma(acc[2 * r], b0), ...fma(acc[2 * r + 1], b1)]),
    ...get(ap), ...i32(4 * R), ADD, ...set(ap),
    ...get(bp), ...i32(32), ADD, ...set(bp),
    ...get(k), ...i32(1), SUB, ...set(k),
    ...get(k), ...brIf(0),
    END, // loop K
    END, // block K
    ...get(pC), ...get(iq), ...get(rowBytes), MUL, ...i32(R), MUL, ADD, ...get(jq), ...i32(32), MUL, ADD, ...set(cp),
    ...rows.flatMap((r) => [
      ...(r > 0 ? [...get(cp), ...get(rowBytes), ADD, ...set(cp)] : []),
      ...get(cp), ...get(acc[2 * r]), ...v128store(0),
      ...get(cp), ...get(acc[2 * r + 1]), ...v128store(16),
    ]),
    ...get(iq), ...i32(1), ADD, ...set(iq),
    ...br(0),
    END, END, // loop/block I
    ...get(jq), ...i32(1), ADD, ...set(jq),
    ...br(0),
    END, END, // loop/block J
    END, // function
  ];
  const locals = vec([
    [...uleb(7), 0x7f],
    [...uleb(2 * R + 3), 0x7b],
  ]);
  const body = [...locals, ...code];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, ...vec([[0x7f], [0x7f], [0x7f], [0x7f], [0x7f], [0x7f]]), ...vec([])]])),
    ...section(3, vec([[0]])),
    ...section(5, vec([[0x00, ...uleb(1)]])),
    ...section(7, vec([[...str('kernel'), 0x00, 0], [...str('memory'), 0x02, 0]])),
    ...section(10, vec([[...uleb(body.length), ...body]])),
  ];
  return new Uint8Array(bytes);
}

interface Kernel {
  kernel: (pA: number, pB: number, pC: number, Mq: number, K: number, Nq: number) => void;
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
}

function instantiate(R: number): Kernel | null {
  return wasmExports(kernelModule(R)) as Kernel | null;
}

/** Strided gemm: C[cOff + i·N + j] += Σ_k A[aOff + i·ars + k·acs]·B[bOff + k·brs + j·bcs]. */
export type StridedGemm = (
  A: Float32Array,
  aOff: number,
  ars: number,
  acs: number,
  B: Float32Array,
  bOff: number,
  brs: number,
  bcs: number,
  C: Float32Array,
  cOff: number,
  M: number,
  K: number,
  N: number,
) => void;

/** K block of the SIMD gemm: longer inner dimensions are summed block by block (partial sums added in JS). */
export const WASM_K_BLOCK = 1024;

/**
 * Build the SIMD gemm for an R-row register tile (null without WebAssembly SIMD). Blocking: columns in blocks of at
 * most `colBlock`, K in blocks of at most `kBlock` (B block packed once, ≤ 16 MiB), rows in chunks sized so that a
 * packed A chunk is about `chunkFloats` floats (256 KiB, stays in L2 while the kernel sweeps the B panels). This also
 * bounds the module's memory whatever the operand sizes. Partial K blocks are summed into C on the JS side.
 */
export function makeWasmGemm(R = 4, chunkFloats = 65536, kBlock = WASM_K_BLOCK, colBlock = 4096): StridedGemm | null {
  const wasm = instantiate(R);
  if (!wasm) return null;
  let heap = new Float32Array(wasm.memory.buffer);
  const ensure = (floats: number): Float32Array => {
    const mem = wasm.memory;
    const need = floats * 4;
    if (mem.buffer.byteLength < need) mem.grow(Math.ceil((need - mem.buffer.byteLength) / 65536));
    if (heap.buffer !== mem.buffer) heap = new Float32Array(mem.buffer);
    return heap;
  };
  return (A, aOff, ars, acs, B, bOff, brs, bcs, C, cOff, M, K, N) => {
    const KB = Math.min(K, kBlock);
    const NB = Math.min(N, colBlock);
    const NqMax = (NB + 7) >> 3;
    const chunkRows = Math.min(Math.max(1, Math.floor(chunkFloats / (KB * R))) * R, Math.ceil(M / R) * R);
    const bLen = NqMax * 8 * KB;
    const aLen = chunkRows * KB;
    const H = ensure(bLen + aLen + chunkRows * NqMax * 8);
    const pa = bLen;
    const pc = bLen + aLen;
    for (let j0 = 0; j0 < N; j0 += NB) {
      const nb = Math.min(NB, N - j0);
      const Nq = (nb + 7) >> 3;
      const Np = Nq * 8;
      for (let k0 = 0; k0 < K; k0 += KB) {
        const kb = Math.min(KB, K - k0);
        // pack B[k0 .. k0+kb, j0 .. j0+nb] as [Nq][kb][8], zero-padding columns past the block
        for (let q = 0; q < Nq; q++) {
          const base = q * kb * 8;
          const jq = j0 + q * 8;
          if (q * 8 + 8 <= nb && bcs === 1) {
            for (let k = 0; k < kb; k++) {
              const src = bOff + (k0 + k) * brs + jq;
              const dst = base + k * 8;
              H[dst] = B[src];
              H[dst + 1] = B[src + 1];
              H[dst + 2] = B[src + 2];
              H[dst + 3] = B[src + 3];
              H[dst + 4] = B[src + 4];
              H[dst + 5] = B[src + 5];
              H[dst + 6] = B[src + 6];
              H[dst + 7] = B[src + 7];
            }
          } else {
            for (let t = 0; t < 8; t++) {
              if (q * 8 + t < nb) {
                let src = bOff + k0 * brs + (jq + t) * bcs;
                for (let k = 0, dst = base + t; k < kb; k++, src += brs, dst += 8) H[dst] = B[src];
              } else for (let k = 0, dst = base + t; k < kb; k++, dst += 8) H[dst] = 0;
            }
          }
        }
        for (let i0 = 0; i0 < M; i0 += chunkRows) {
          const rowsHere = Math.min(chunkRows, M - i0);
          const Mr = Math.ceil(rowsHere / R);
          // pack A[i0 .. i0+rowsHere, k0 .. k0+kb] as [Mr][kb][R], zero-padding rows past M
          for (let q = 0; q < Mr; q++) {
            const base = pa + q * kb * R;
            for (let r = 0; r < R; r++) {
              const i = i0 + q * R + r;
              if (i < M) {
                let src = aOff + i * ars + k0 * acs;
                for (let k = 0, dst = base + r; k < kb; k++, src += acs, dst += R) H[dst] = A[src];
              } else for (let k = 0, dst = base + r; k < kb; k++, dst += R) H[dst] = 0;
            }
          }
          wasm.kernel(pa * 4, 0, pc * 4, Mr, kb, Nq);
          for (let i = 0; i < rowsHere; i++) {
            const src = pc + i * Np;
            const dst = cOff + (i0 + i) * N + j0;
            for (let j = 0; j < nb; j++) C[dst + j] += H[src + j];
          }
        }
      }
    }
  };
}

const simdGemm = makeWasmGemm(4);

/** Whether the WebAssembly SIMD kernel is available in this runtime. */
export const hasWasmSimd = simdGemm !== null;

/**
 * C[cOff + i·N + j] += Σ_k A(i, k)·B(k, j) where A(i, k) = A[aOff + i·ars + k·acs] and B(k, j) = B[bOff + k·brs + j·bcs]
 * (so transposes are just strides). Returns false when the SIMD kernel is unavailable.
 */
export function gemmWasm(
  A: Float32Array,
  aOff: number,
  ars: number,
  acs: number,
  B: Float32Array,
  bOff: number,
  brs: number,
  bcs: number,
  C: Float32Array,
  cOff: number,
  M: number,
  K: number,
  N: number,
): boolean {
  if (!simdGemm) return false;
  if (M === 0 || N === 0 || K === 0) return true;
  simdGemm(A, aOff, ars, acs, B, bOff, brs, bcs, C, cOff, M, K, N);
  return true;
}
