/**
 * WebAssembly SIMD kernels for the baselines' per-explanation arithmetic over intermediate tensors (source:
 * `packages/baselines/wasm/kernels.c`, built into `kernels-wasm.ts` by `tools/wasm/build-kernels.mjs`), loaded with
 * core's `lazyWasm` (same arena and fallback rules as core's kernels). Every caller keeps its JavaScript path, used
 * when the runtime has no WebAssembly SIMD or when `SOP_WASM=0`.
 */
import { lazyWasm, type WasmArena, type WasmArenaExports } from '@sop/core';
import { KERNELS_WASM_BASE64 } from './kernels-wasm.js';

interface KernelExports extends WasmArenaExports {
  bias_abs_maps(g: number, absb: number, B: number, K: number, hw: number, out: number, sum: number): void;
  cam_maps(G: number, A: number, B: number, K: number, hw: number, out: number): void;
  target_probs(z: number, targets: number, R: number, C: number, per: number, out: number): void;
  input_part(x: number, g: number, B: number, n: number, absminmax: number, out: number): void;
  maps_to_image(maps: number, B: number, h: number, w: number, C: number, H: number, W: number, out: number, scratch: number): void;
  blur_sep(data: number, N: number, H: number, W: number, ker: number, r: number, tmp: number, out: number): void;
  noisy_normals(st: number, kn: number, wn: number, out: number, base: number, per: number, n: number, scale: number, start: number, end: number, slow: number): number;
  mul_uniform(st: number, out: number, m: number, lo: number, step: number): void;
  ampe_step(grads: number, B: number, S: number, n: number, mean: number, ker: number, r: number, H: number, W: number, tmp: number, smooth: number, cur: number, mom: number, attr: number, x: number, mu: number, alpha: number, eps: number, lo: number, hi: number): void;
  aggregate_patches(attr: number, B: number, C: number, hw: number, feature: number, d: number, out: number): void;
}

/** The baselines' kernel module (core's {@link WasmArena}). */
export type BaselineKernels = WasmArena<KernelExports>;

const module = lazyWasm<KernelExports>(KERNELS_WASM_BASE64);

/** The kernels, or null when WebAssembly SIMD is unavailable (or disabled with SOP_WASM=0). */
export function baselineKernels(): BaselineKernels | null {
  return module.get();
}

/** For tests: force the JavaScript paths (false) or the kernels (true, when available); returns the previous state. */
export function setBaselineKernelsEnabled(on: boolean): boolean {
  return module.setEnabled(on);
}

/** GradCAM's Σ_k mean(G_k)·A_k per example, [B, hw], for G, A [B, K, hw] (see `cam_maps` in kernels.c). */
export function camMapsKernel(k: BaselineKernels, G: Float32Array, A: Float32Array, B: number, K: number, hw: number): Float32Array {
  k.reset();
  const pG = k.put(G);
  const pA = k.put(A);
  const po = k.alloc(B * hw * 4);
  k.exports.cam_maps(pG, pA, B, K, hw, po);
  return k.f32(po, B * hw).slice();
}

/**
 * Softmax probability of each row's target, float32 (see `target_probs` in kernels.c): z [R, C], row r's target
 * targets[⌊r / per⌋]; written into `out` [R].
 */
export function targetProbsKernel(k: BaselineKernels, z: Float32Array, targets: Int32Array, R: number, C: number, per: number, out: Float64Array): void {
  k.reset();
  const pz = k.put(z.length === R * C ? z : z.subarray(0, R * C));
  const pt = k.put(targets);
  const po = k.alloc(R * 4);
  k.exports.target_probs(pz, pt, R, C, per, po);
  const v = k.f32(po, R);
  for (let r = 0; r < R; r++) out[r] = v[r];
}

/** One FullGrad bias layer: gradients g [B, K, h, w] w.r.t. the layer's output, and its bias [K]. */
export interface FullGradLayer {
  g: Float32Array;
  bias: Float32Array;
  K: number;
  h: number;
  w: number;
}

/**
 * FullGrad's post-processing with ψ = abs + min-max on an image input [B, C, H, W], in one arena: ψ(x ⊙ ∇x), plus for
 * every group of layers of one spatial size the channel-summed ψ(∇z ⊙ b) maps (`bias_abs_maps`), resized onto the
 * image (`maps_to_image`). Returns the input-level attribution [B, C·H·W] (float32 arithmetic): written into `out`
 * when given (at least B·C·H·W values; the first B·C·H·W are returned), else a fresh array.
 */
export function fullgradKernel(k: BaselineKernels, x: Float32Array, gx: Float32Array, xShape: number[], layers: FullGradLayer[], out?: Float32Array): Float32Array {
  const n = xShape[1] * xShape[2] * xShape[3];
  const B = xShape[0];
  const pattr = fullgradArena(k, x, gx, xShape, layers);
  return out ? k.read(pattr, B * n, out.length === B * n ? out : out.subarray(0, B * n)) : k.f32(pattr, B * n).slice();
}

/**
 * {@link fullgradKernel} followed by a patches feature space's aggregation in the same arena (`aggregate_patches`: the
 * float32 sums of core's `PatchesSpace.aggregate`, in its order, so the values are the same): `pixelFeature` [H·W]
 * gives each pixel's feature, of `d`. Returns the feature attributions [B, d] (a fresh array).
 */
export function fullgradFeaturesKernel(k: BaselineKernels, x: Float32Array, gx: Float32Array, xShape: number[], layers: FullGradLayer[], pixelFeature: Int32Array, d: number): Float32Array {
  const [B, C, H, W] = xShape;
  const pattr = fullgradArena(k, x, gx, xShape, layers);
  const pf = k.put(pixelFeature);
  const pout = k.alloc(B * d * 4);
  k.exports.aggregate_patches(pattr, B, C, H * W, pf, d, pout);
  return k.f32(pout, B * d).slice();
}

/** The arena part of {@link fullgradKernel}: resets the arena and returns the offset of the attribution [B, C·H·W]. */
function fullgradArena(k: BaselineKernels, x: Float32Array, gx: Float32Array, xShape: number[], layers: FullGradLayer[]): number {
  const [B, C, H, W] = xShape;
  const n = C * H * W;
  k.reset();
  const px = k.put(x.length === B * n ? x : x.subarray(0, B * n));
  const pgx = k.put(gx.length === B * n ? gx : gx.subarray(0, B * n));
  const pattr = k.alloc(B * n * 4);
  k.exports.input_part(px, pgx, B, n, 1, pattr);
  // layers grouped by spatial size (in order of first appearance): each group's maps are summed at that size and
  // resized onto the image once (bilinear resizing is linear)
  for (let i = 0; i < layers.length; i++) {
    const { h, w } = layers[i];
    let seen = false;
    for (let j = 0; j < i && !seen; j++) seen = layers[j].h === h && layers[j].w === w;
    if (seen) continue;
    const hw = h * w;
    const pacc = k.alloc(B * hw * 4);
    k.f32(pacc, B * hw).fill(0);
    const ps = k.alloc(Math.max(hw, 3 * W + h * W) * 4);
    // the group's layers go through one region (sized for the largest), each copied in and reduced in turn: the
    // kernel's memory stays as small as one layer's gradients
    let maxK = 0;
    for (let j = i; j < layers.length; j++) if (layers[j].h === h && layers[j].w === w && layers[j].K > maxK) maxK = layers[j].K;
    const pb = k.alloc(maxK * 4);
    const pg = k.alloc(B * maxK * hw * 4);
    for (let j = i; j < layers.length; j++) {
      const l = layers[j];
      if (l.h !== h || l.w !== w) continue;
      const absb = k.f32(pb, l.K);
      for (let q = 0; q < l.K; q++) absb[q] = Math.abs(l.bias[q]);
      const m = B * l.K * hw;
      k.f32(pg, m).set(l.g.length === m ? l.g : l.g.subarray(0, m));
      k.exports.bias_abs_maps(pg, pb, B, l.K, hw, pacc, ps);
    }
    // the channel-sum scratch is free again: maps_to_image's scratch
    k.exports.maps_to_image(pacc, B, h, w, C, H, W, pattr, ps);
  }
  return pattr;
}

/**
 * Separable Gaussian blur of N planes [H, W] with the float64 taps `ker` [2r + 1] (zero padding), written into `out`
 * [N·H·W] (see `blur_sep` in kernels.c: the sums of `GaussianBlur.apply`, in its order, so the values are the same).
 */
export function blurKernel(k: BaselineKernels, data: Float32Array, N: number, H: number, W: number, ker: Float64Array, r: number, out: Float32Array): Float32Array {
  const m = N * H * W;
  k.reset();
  const pd = k.put(data.length === m ? data : data.subarray(0, m));
  const pk = k.alloc(ker.length * 8);
  new Float64Array(k.exports.memory.buffer, pk, ker.length).set(ker);
  const pt = k.alloc(m * 4);
  const po = k.alloc(m * 4);
  k.exports.blur_sep(pd, N, H, W, pk, r, pt, po);
  return k.read(po, m, out);
}

/** The slow path of the ziggurat for {@link noisyRowsKernel}: finishes draw (j, iz) from `state` (updated in place). */
export type SlowNormal = (j: number, iz: number, state: Int32Array) => number;

/**
 * AMPE's noisy rows with BulkRng's stream (see `noisy_normals` and `mul_uniform` in kernels.c): out[r·n + i] =
 * (base[⌊r / per⌋·n + i] + scale·z)·(lo + (hi − lo)·U) for r < rows, all the normals row by row, then all the uniform
 * factors. `state` [4] (xoshiro128**) is read and written back; the ziggurat's rare slow draws go through `slow`.
 */
export function noisyRowsKernel(k: BaselineKernels, state: Int32Array, kn: Float64Array, wn: Float64Array, base: Float32Array, rows: number, per: number, n: number, scale: number, lo: number, hi: number, out: Float32Array, slow: SlowNormal): void {
  const m = rows * n;
  k.reset();
  const pst = k.put(state);
  const pkn = k.alloc(kn.length * 8);
  const pwn = k.alloc(wn.length * 8);
  const pslow = k.alloc(8);
  const pbase = k.put(base);
  const pout = k.alloc(m * 4);
  const mem = k.exports.memory.buffer;
  new Float64Array(mem, pkn, kn.length).set(kn);
  new Float64Array(mem, pwn, wn.length).set(wn);
  const st = new Int32Array(mem, pst, 4);
  const sl = new Int32Array(mem, pslow, 2);
  const o = k.f32(pout, m);
  for (let idx = 0; ; ) {
    idx = k.exports.noisy_normals(pst, pkn, pwn, pout, pbase, per, n, scale, idx, m, pslow);
    if (idx >= m) break;
    state.set(st);
    const z = slow(sl[0], sl[1], state);
    st.set(state);
    const r = Math.floor(idx / n);
    o[idx] = base[Math.floor(r / per) * n + idx - r * n] + scale * z;
    idx++;
  }
  k.exports.mul_uniform(pst, pout, m, lo, (hi - lo) / 4294967296);
  state.set(st);
  k.read(pout, m, out.length === m ? out : out.subarray(0, m));
}

/** AMPE's state across steps, updated in place by {@link ampeStepKernel}. */
export interface AmpeState {
  /** Current points x_t [B, n]. */
  cur: Float32Array;
  /** Momentum [B, n]. */
  mom: Float64Array;
  /** Path attribution so far [B, n]. */
  attr: Float32Array;
  /** The explained inputs [B, n]. */
  x: Float32Array;
}

/**
 * One AMPE step after its gradients (see `ampe_step` in kernels.c; ampe.ts is the reference, same values): grads
 * [B·S, n] → mean over the S samples, the TI blur (`blur`: taps [2r + 1] and the plane size, or null), momentum, the
 * clipped sign step and the path attribution, all in `state`.
 */
export function ampeStepKernel(k: BaselineKernels, grads: Float32Array, B: number, S: number, n: number, blur: { ker: Float64Array; r: number; H: number; W: number } | null, state: AmpeState, mu: number, alpha: number, eps: number, lo: number, hi: number): void {
  const m = B * n;
  k.reset();
  const pg = k.put(grads.length === m * S ? grads : grads.subarray(0, m * S));
  const pmean = k.alloc(m * 4);
  const pker = blur ? k.alloc(blur.ker.length * 8) : 0;
  const ptmp = blur ? k.alloc(m * 4) : 0;
  const psm = blur ? k.alloc(m * 4) : 0;
  const pcur = k.put(state.cur);
  const pmom = k.alloc(m * 8);
  const pattr = k.put(state.attr);
  const px = k.put(state.x);
  const mem = k.exports.memory.buffer;
  if (blur) new Float64Array(mem, pker, blur.ker.length).set(blur.ker);
  const mom = new Float64Array(mem, pmom, m);
  mom.set(state.mom);
  k.exports.ampe_step(pg, B, S, n, pmean, pker, blur ? blur.r : 0, blur ? blur.H : 1, blur ? blur.W : 1, ptmp, psm, pcur, pmom, pattr, px, mu, alpha, eps, lo, hi);
  state.mom.set(mom);
  k.read(pcur, m, state.cur);
  k.read(pattr, m, state.attr);
}
