/**
 * WebAssembly SIMD kernels for SOP's per-prediction work (source: `packages/core/wasm/kernels.c`, built into
 * `kernels-wasm.ts` by `tools/wasm/build-kernels.mjs`). Instantiated lazily and synchronously on first use (see
 * `wasm.ts`); every caller keeps a JavaScript fallback, used when the runtime has no WebAssembly SIMD or when
 * `SOP_WASM=0`.
 */
import { KERNELS_WASM_BASE64 } from './kernels-wasm.js';
import { instantiateWasm, lazyWasm, uninitF32, type WasmArena, type WasmArenaExports } from './wasm.js';

export { WasmArena, instantiateWasm, lazyWasm, uninitF32, type WasmArenaExports } from './wasm.js';

interface KernelExports extends WasmArenaExports {
  exp_f32(x: number, y: number, n: number): void;
  topk_mass(logits: number, rows: number, len: number, k: number, largest: number, a: number, M: number, c: number, keys: number): void;
  topk_mask(v: number, rows: number, len: number, k: number, largest: number, M: number, keys: number): void;
  sparsemax_mid(z: number, outer: number, len: number, inner: number, out: number, sorted: number): void;
  mask_rows(x: number, rows: number, R: number, masks: number, d: number, map: number, hw: number, C: number, base: number, out: number, work: number): void;
  gen_logits(V: number, B: number, d: number, p: number, qs: number, m: number, G: number, aBk: number, aBkRows: number, Abk: number, AbkCols: number, abk: number, abkRows: number, abkCols: number, L: number, work: number): void;
  gen_topk(V: number, B: number, d: number, p: number, qs: number, m: number, G: number, aBk: number, aBkRows: number, Abk: number, AbkCols: number, abk: number, abkRows: number, abkCols: number, L: number, work: number, k: number, largest: number, a: number, M: number, c: number, scratch: number): void;
  matmul_rows(X: number, n: number, k: number, W: number, C: number, Y: number, WT: number): void;
  gather_rows(x: number, B: number, row: number, idx: number, n: number, out: number): void;
  add_rows(y: number, n: number, b: number, len: number): void;
  matmul_rows_padded(X: number, n: number, k: number, WT: number, C: number, Y: number): void;
  sparsemax_combine(S: number, B: number, m: number, C: number, z: number, scales: number, alpha: number, work: number, zh: number, ct: number, y: number, acc: number): void;
  select_sparsemax(keys: number, B: number, m: number, k: number, u: number, C: number, alpha: number, S: number, work: number, uT: number): void;
  sop_combine(z: number, alpha: number, scales: number, B: number, m: number, C: number, zh: number, ct: number, y: number, acc: number): void;
  dense_rows(X: number, n: number, k: number, W: number, N: number, b: number, act: number, Y: number): void;
  select_combine(keys: number, B: number, m: number, k: number, u: number, C: number, z: number, scales: number, alpha: number, S: number, work: number, uT: number, zh: number, ct: number, y: number, acc: number): void;
}

/** Core's kernel module (see {@link WasmArena}). */
export type Kernels = WasmArena<KernelExports>;

const module = lazyWasm<KernelExports>(KERNELS_WASM_BASE64);

/** The kernels, or null when WebAssembly SIMD is unavailable (or disabled with SOP_WASM=0). */
export function kernels(): Kernels | null {
  return module.get();
}

/** For tests: force the JavaScript paths (false) or the kernels (true, when available); returns the previous state. */
export function setKernelsEnabled(on: boolean): boolean {
  return module.setEnabled(on);
}

export interface TopkMassValues {
  a: Float32Array;
  M: Float32Array;
  c: Float32Array;
}

/** softmax + top-k mask + scale per row of `len` logits (see topk-mass.ts). */
export function topkMassKernel(k: Kernels, logits: Float32Array, len: number, kk: number, largest: boolean): TopkMassValues {
  const rows = len === 0 ? 0 : logits.length / len;
  k.reset();
  const pL = k.put(logits);
  const pA = k.alloc(logits.byteLength);
  const pM = k.alloc(logits.byteLength);
  const pC = k.alloc(rows * 4);
  const pK = k.alloc(256 + 4 * len);
  k.exports.topk_mass(pL, rows, len, kk, largest ? 1 : 0, pA, pM, pC, pK);
  return { a: k.read(pA, logits.length), M: k.read(pM, logits.length), c: k.read(pC, rows) };
}

/** 0/1 mask of the top k of each row of `len` values. */
export function topkMaskKernel(k: Kernels, v: Float32Array, len: number, kk: number, largest: boolean): Float32Array {
  const rows = len === 0 ? 0 : v.length / len;
  k.reset();
  const pV = k.put(v);
  const pM = k.alloc(v.byteLength);
  const pK = k.alloc(256 + 4 * len);
  k.exports.topk_mask(pV, rows, len, kk, largest ? 1 : 0, pM, pK);
  return k.read(pM, v.length);
}

/** Sparsemax along the middle axis of [outer, len, inner]. */
export function sparsemaxKernel(k: Kernels, z: Float32Array, outer: number, len: number, inner: number): Float32Array {
  k.reset();
  const pZ = k.put(z);
  const pO = k.alloc(z.byteLength);
  const pS = k.alloc(sparsemaxWorkBytes(len));
  k.exports.sparsemax_mid(pZ, outer, len, inner, pO, pS);
  return k.read(pO, z.length);
}

/**
 * out[r] = x[rows[r]] ⊙ expand(masks[r]) (base undefined) or base + (x − base) ⊙ expand(masks[r]), with the pixel →
 * feature map `map` ([hw]) repeated over C channels. `out` must hold rows.length·C·hw values.
 */
export function maskRowsKernel(
  k: Kernels,
  x: Float32Array,
  rows: Int32Array,
  masks: Float32Array,
  d: number,
  map: Int32Array,
  C: number,
  base: Float32Array | undefined,
  out: Float32Array,
): Float32Array {
  const hw = map.length;
  const row = C * hw;
  const n = rows.length * row;
  // only the span of x's rows that `rows` reads is copied in (a chunk of a large batch reads a few of its examples)
  let lo = rows.length > 0 ? rows[0] : 0;
  let hi = lo;
  for (let r = 1; r < rows.length; r++) {
    const v = rows[r];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const xs = rows.length > 0 && (lo > 0 || (hi + 1) * row < x.length) ? x.subarray(lo * row, (hi + 1) * row) : x;
  const rs = lo > 0 ? rows.map((v) => v - lo) : rows;
  // `out` in a kernel buffer: the rows are written where they are read, in that buffer's own module instance
  const owner = KernelBuffer.owning(out, n);
  const a = owner ? owner.arena : k;
  // read before the copies below, which may grow that memory and so detach `out`
  const inPlace = owner ? out.byteOffset : 0;
  a.reset();
  const pX = a.put(xs);
  const pR = a.put(rs);
  const pMk = a.put(masks);
  const pMap = a.put(map);
  const pB = base ? a.put(base) : 0;
  const pO = owner ? inPlace : a.alloc(n * 4);
  const pE = a.alloc(15 * hw + 64);
  a.exports.mask_rows(pX, pR, rows.length, pMk, d, pMap, hw, C, pB, pO, pE);
  return owner ? owner.renew(pO, n) : a.read(pO, n, out);
}

/** A new instance of the kernel module, with memory of its own; null without the kernels (as {@link kernels}). */
function ownInstance(): Kernels | null {
  return kernels() && instantiateWasm<KernelExports>(KERNELS_WASM_BASE64);
}

/** `a` copied into the arena with 12 floats of slack after it (dense_rows loads whole vectors past W's and b's ends). */
function putPadded(k: Kernels, a: Float32Array): number {
  const p = k.alloc(a.byteLength + 48);
  k.f32(p, a.length).set(a);
  return p;
}

/**
 * A float buffer in a kernel module instance of its own. {@link maskRowsKernel} given a view of it as `out` writes
 * the masked rows in place there (instead of in the shared instance, then copying them out): the caller hands them
 * on (e.g. to a backbone) without a copy. Nothing else runs in that instance, so the view stays valid while its
 * owner uses it, until the next kernel call on it: that call may grow the memory (detaching older views) and returns
 * the view to use instead; {@link view} gives the current one.
 */
export class KernelBuffer {
  private ptr = 0;
  private capacity = 0;
  /** Kernel buffers by their instance's current memory (renewed when it grows). */
  private static readonly byMemory = new WeakMap<ArrayBuffer, KernelBuffer>();

  private constructor(readonly arena: Kernels) {}

  /** A new buffer, or null without the kernels (no WebAssembly SIMD, SOP_WASM=0, or switched off). */
  static create(): KernelBuffer | null {
    const arena = ownInstance();
    return arena && new KernelBuffer(arena);
  }

  /** The buffer whose current view holds all n values of `out`, if any. */
  static owning(out: Float32Array, n: number): KernelBuffer | undefined {
    const kb = KernelBuffer.byMemory.get(out.buffer as ArrayBuffer);
    return kb && out.byteOffset >= kb.ptr && out.byteOffset + n * 4 <= kb.ptr + kb.capacity * 4 ? kb : undefined;
  }

  /** A view of n floats of the buffer (grown when needed; contents unspecified). */
  view(n: number): Float32Array {
    if (n > this.capacity) {
      this.arena.resetAll();
      this.ptr = this.arena.alloc(n * 4);
      this.arena.keepAllocated();
      this.capacity = n;
    }
    return this.renew(this.ptr, n);
  }

  /** A view of n floats at offset p of the instance's current memory (recorded as this buffer's). */
  renew(p: number, n: number): Float32Array {
    const v = this.arena.f32(p, n);
    KernelBuffer.byMemory.set(v.buffer as ArrayBuffer, this);
    return v;
  }
}

/** Row-major product Y [n, C] = X [n, kk] · W [kk, C]. */
export function matmulRowsKernel(k: Kernels, X: Float32Array, n: number, kk: number, W: Float32Array, C: number): Float32Array {
  k.reset();
  const pX = k.put(X);
  const pW = k.put(W);
  const pY = k.alloc(n * C * 4);
  const pT = k.alloc(kk * (C + 3) * 4);
  k.exports.matmul_rows(pX, n, kk, pW, C, pY, pT);
  return k.read(pY, n * C);
}

/**
 * W [kk, C] laid out for {@link matmulPaddedKernel}: for C ≤ 16 its rows zero-padded to whole vectors of four
 * ([kk, ⌈C/4⌉·4]); beyond, W itself.
 */
export function padColumns(W: Float32Array, kk: number, C: number): Float32Array {
  if (C > 16) return W;
  const C4 = (C + 3) & ~3;
  const out = new Float32Array(kk * C4);
  for (let q = 0; q < kk; q++) for (let c = 0; c < C; c++) out[q * C4 + c] = W[q * C + c];
  return out;
}

/**
 * Y [n, C] = X [n, kk] · W [kk, C] as {@link matmulRowsKernel} (same values, row by row), with W already padded by
 * {@link padColumns} (for callers multiplying several row blocks by one W); Y written into `out` at `offset`.
 */
export function matmulPaddedKernel(k: Kernels, X: Float32Array, n: number, kk: number, WT: Float32Array, C: number, out: Float32Array, offset: number): void {
  k.reset();
  const pX = k.put(X.length === n * kk ? X : X.subarray(0, n * kk));
  const pW = k.put(WT);
  const pY = k.alloc(n * C * 4);
  k.exports.matmul_rows_padded(pX, n, kk, pW, C, pY);
  out.set(k.f32(pY, n * C), offset);
}

/**
 * Feature values [B, d, w], or how to gather them from rows of x (see FeatureSpace.featureValueIndex: V[b, t] =
 * index[t] ≥ 0 ? x[b·row + index[t]] : 0), which the kernel then does in WebAssembly memory.
 */
export type FeatureValues = Float32Array | { x: Float32Array; index: Int32Array };

/**
 * Projection embeddings E = V·W + bias (+ pos per feature) [B, d, p] of raw feature values V [B, d, w], built in
 * WebAssembly memory by dense_rows (the bits of the op-by-op gemm and add for w ≤ 1024), then the position embedding
 * added per feature row.
 */
export interface ProjectedValues {
  values: FeatureValues;
  /** w: raw values per feature. */
  width: number;
  /** [w, p] row-major. */
  W: Float32Array;
  /** [p]. */
  bias: Float32Array;
  /** [d, p]. */
  pos?: Float32Array;
}

export interface GenLogitsOperands {
  /** Feature values [B, d, p] (see {@link FeatureValues}), or embeddings projected from raw values in the kernel's memory. */
  V: FeatureValues | { project: ProjectedValues };
  B: number;
  d: number;
  p: number;
  /** Query features [m]. */
  qs: Int32Array;
  /** [p, p]. */
  G: Float32Array;
  /** [m | 1, p]. */
  aBk: Float32Array;
  /** [p, d | 1]. */
  Abk: Float32Array;
  /** [m | 1, d | 1]. */
  abk: Float32Array;
  abkCols: number;
}

/** Feature values into the arena (gathered there from x when given as a gather); returns their address. */
function putValues(k: Kernels, V: FeatureValues, B: number): number {
  if (V instanceof Float32Array) return k.put(V);
  const { x, index } = V;
  const px = k.put(x);
  const pI = k.put(index);
  const pV = k.alloc(B * index.length * 4);
  k.exports.gather_rows(px, B, B === 0 ? 0 : x.length / B, pI, index.length, pV);
  return pV;
}

/** Copy the generator's operands into the arena (after reset) with room for the logits and the work buffer. */
function putGenerator(k: Kernels, o: GenLogitsOperands): number[] {
  const m = o.qs.length;
  const { B, d, p } = o;
  let pV: number;
  if ('project' in o.V) {
    const pr = o.V.project;
    const pRaw = putValues(k, pr.values, B);
    const pW = putPadded(k, pr.W);
    const pb = putPadded(k, pr.bias);
    pV = k.alloc(B * d * p * 4);
    k.exports.dense_rows(pRaw, B * d, pr.width, pW, p, pb, 0, pV);
    if (pr.pos) k.exports.add_rows(pV, B, k.put(pr.pos), d * p);
  } else pV = putValues(k, o.V, B);
  const pQ = k.put(o.qs);
  const pG = k.put(o.G);
  const pa = k.put(o.aBk);
  const pA = k.put(o.Abk);
  const pab = k.put(o.abk);
  const pL = k.alloc(B * m * d * 4);
  const pW = k.alloc((2 * p * (d + 3) + 2 * p * m + 4 * (d + 3) + 8) * 4);
  // the argument list of gen_logits (gen_topk adds its own after it)
  return [pV, B, d, p, pQ, m, pG, pa, o.aBk.length / p, pA, o.Abk.length / p, pab, o.abk.length / o.abkCols, o.abkCols, pL, pW];
}

/** The attention generator's factored logits at inference: [B, m, d] (see gen_logits in kernels.c). */
export function genLogitsKernel(k: Kernels, o: GenLogitsOperands): Float32Array {
  k.reset();
  const args = putGenerator(k, o);
  k.exports.gen_logits(...(args as Parameters<KernelExports['gen_logits']>));
  return k.read(args[14], o.B * o.qs.length * o.d);
}

/** The sparsemax selector at inference: α [B, m, C] = sparsemax over groups of keys [B·m, kk] · u [kk, C]. */
export function selectSparsemaxKernel(k: Kernels, keys: Float32Array, B: number, m: number, kk: number, u: Float32Array, C: number): Float32Array {
  k.reset();
  const pK = k.put(keys);
  const pU = k.put(u);
  const pA = k.alloc(B * m * C * 4);
  const pS = k.alloc(B * m * C * 4);
  const pW = k.alloc(sparsemaxWorkBytes(m));
  const pT = k.alloc(kk * (C + 3) * 4);
  k.exports.select_sparsemax(pK, B, m, kk, pU, C, pA, pS, pW, pT);
  return k.read(pA, B * m * C);
}

export interface Combined {
  /** ẑ = c·z [B, m, C]. */
  scaled: Float32Array;
  /** α ⊙ ẑ [B, m, C]. */
  contributions: Float32Array;
  /** Σ_j α ⊙ ẑ [B, C]. */
  output: Float32Array;
}

/** Float64 work bytes of the sparsemax kernels for columns of `len` entries (up to three interleaved column pairs). */
function sparsemaxWorkBytes(len: number): number {
  return Math.max(1, len) * 48;
}

/** The combination's outputs ẑ, α ⊙ ẑ, y and its float64 accumulator, allocated in the arena (kernel argument order). */
function allocCombined(k: Kernels, B: number, m: number, C: number): [number, number, number, number] {
  const n = B * m * C;
  return [k.alloc(n * 4), k.alloc(n * 4), k.alloc(B * C * 4), k.alloc(Math.max(1, C) * 8)];
}

/** ẑ, α ⊙ ẑ and y copied out of the arena (see {@link allocCombined}). */
function readCombined(k: Kernels, [pzh, pct, py]: [number, number, number, number], B: number, m: number, C: number): Combined {
  const n = B * m * C;
  return { scaled: k.read(pzh, n), contributions: k.read(pct, n), output: k.read(py, B * C) };
}

/** SOP's output from the group outputs z and weights α [B, m, C] and the scales c [B, m]. */
export function sopCombineKernel(k: Kernels, z: Float32Array, alpha: Float32Array, scales: Float32Array, B: number, m: number, C: number): Combined {
  k.reset();
  const pz = k.put(z);
  const pa = k.put(alpha);
  const ps = k.put(scales);
  const out = allocCombined(k, B, m, C);
  k.exports.sop_combine(pz, pa, ps, B, m, C, ...out);
  return readCombined(k, out, B, m, C);
}

export interface SelectCombined extends Combined {
  /** α [B, m, C]. */
  weights: Float32Array;
}

/**
 * {@link selectSparsemaxKernel} then {@link sopCombineKernel} in one call (α stays in WebAssembly memory between the
 * two; `keys` is copied once when it is `z` itself, as with 'output' keys). Same values as the two calls.
 */
export function selectCombineKernel(k: Kernels, keys: Float32Array, B: number, m: number, kk: number, u: Float32Array, C: number, z: Float32Array, scales: Float32Array): SelectCombined {
  k.reset();
  const pK = k.put(keys);
  const pz = z === keys ? pK : k.put(z);
  const pU = k.put(u);
  const ps = k.put(scales);
  const n = B * m * C;
  const pA = k.alloc(n * 4);
  const pS = k.alloc(n * 4);
  const pW = k.alloc(sparsemaxWorkBytes(m));
  const pT = k.alloc(kk * (C + 3) * 4);
  const out = allocCombined(k, B, m, C);
  k.exports.select_combine(pK, B, m, kk, pU, C, pz, ps, pA, pS, pW, pT, ...out);
  return { weights: k.read(pA, n), ...readCombined(k, out, B, m, C) };
}

/**
 * The selector's weights α = sparsemax over groups of scores S [B, m, C] (keys · u, computed beforehand with
 * {@link matmulPaddedKernel}) and SOP's combination with z and the scales: the same values as
 * {@link selectCombineKernel} on the keys.
 */
export function sparsemaxCombineKernel(k: Kernels, S: Float32Array, B: number, m: number, C: number, z: Float32Array, scales: Float32Array): SelectCombined {
  k.reset();
  const n = B * m * C;
  const pS = k.put(S.length === n ? S : S.subarray(0, n));
  const pz = k.put(z.length === n ? z : z.subarray(0, n));
  const ps = k.put(scales);
  const pA = k.alloc(n * 4);
  const pW = k.alloc(sparsemaxWorkBytes(m));
  const out = allocCombined(k, B, m, C);
  k.exports.sparsemax_combine(pS, B, m, C, pz, ps, pA, pW, ...out);
  return { weights: k.read(pA, n), ...readCombined(k, out, B, m, C) };
}

/** The generator's logits (as {@link genLogitsKernel}) and then softmax + top-k + scale (as {@link topkMassKernel}) in one call; `a` only when `attention`. */
export function genTopkKernel(k: Kernels, o: GenLogitsOperands, kk: number, largest: boolean, attention = true): Partial<TopkMassValues> & Omit<TopkMassValues, 'a'> {
  const rows = o.B * o.qs.length;
  const n = rows * o.d;
  k.reset();
  const args = putGenerator(k, o);
  const pAt = attention ? k.alloc(n * 4) : 0; // 0: the kernel does not write the attention
  const pM = k.alloc(n * 4);
  const pC = k.alloc(rows * 4);
  const pK = k.alloc(256 + 4 * o.d);
  k.exports.gen_topk(...(args as Parameters<KernelExports['gen_logits']>), kk, largest ? 1 : 0, pAt, pM, pC, pK);
  return { a: attention ? k.read(pAt, n) : undefined, M: k.read(pM, n), c: k.read(pC, rows) };
}

/** One dense layer for {@link DenseStack}: W [k, N] row-major (the transposed weight matrix), bias [N], act 0 (none) or 1 (relu). */
export interface DenseLayer {
  W: Float32Array;
  b: Float32Array;
  k: number;
  N: number;
  act: 0 | 1;
}

/**
 * A fixed stack of dense layers (see {@link DenseLayer}) whose weights live in a kernel module instance of its own,
 * copied in once: each {@link run} copies only the input rows in and the kept outputs out (a frozen backbone called
 * chunk after chunk does not re-copy its weights, and they are not evicted by other kernels' work in between). Rows go
 * through in blocks whose activations take at most about 4 MiB of the instance's memory. Each layer is act(X·W + b)
 * by `dense_rows`: the same bits as gemm, add and relu op by op wherever that path runs the SIMD gemm in one K block
 * (k ≤ 1024).
 */
export class DenseStack {
  private readonly ptrs: Array<{ W: number; b: number }> = [];
  private readonly maxWidth: number;

  private constructor(
    private readonly arena: Kernels,
    readonly layers: DenseLayer[],
  ) {
    for (const l of layers) this.ptrs.push({ W: putPadded(arena, l.W), b: putPadded(arena, l.b) });
    arena.keepAllocated();
    this.maxWidth = Math.max(layers[0].k, ...layers.map((l) => l.N));
  }

  /** A stack for these layers, or null without the kernels (no WebAssembly SIMD, SOP_WASM=0, or switched off). */
  static create(layers: DenseLayer[]): DenseStack | null {
    const arena = layers.length > 0 ? ownInstance() : null;
    return arena && new DenseStack(arena, layers);
  }

  /** The outputs [n, N] of the layers listed in `keep` for X [n, k₀] (written into `into[i]` when given). */
  run(X: Float32Array, n: number, keep: number[], into: Array<Float32Array | undefined> = []): Float32Array[] {
    const { arena, layers } = this;
    const outs = keep.map((i, j) => into[j] ?? uninitF32(n * layers[i].N));
    const block = Math.max(1, Math.min(n, Math.floor((1 << 20) / this.maxWidth)));
    const k0 = layers[0].k;
    for (let r0 = 0; r0 < n; r0 += block) {
      const rows = Math.min(block, n - r0);
      arena.reset();
      let pX = arena.put(X.subarray(r0 * k0, (r0 + rows) * k0));
      const pY: number[] = [];
      for (let l = 0; l < layers.length; l++) {
        const L = layers[l];
        const p = arena.alloc(rows * L.N * 4);
        arena.exports.dense_rows(pX, rows, L.k, this.ptrs[l].W, L.N, this.ptrs[l].b, L.act, p);
        pY.push(p);
        pX = p;
      }
      keep.forEach((i, j) => outs[j].set(arena.f32(pY[i], rows * layers[i].N), r0 * layers[i].N));
    }
    return outs;
  }
}
