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
  maps_to_image(maps: number, B: number, h: number, w: number, C: number, H: number, W: number, out: number): void;
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
 * image (`maps_to_image`). Returns the input-level attribution [B, C·H·W] (a fresh array; float32 arithmetic).
 */
export function fullgradKernel(k: BaselineKernels, x: Float32Array, gx: Float32Array, xShape: number[], layers: FullGradLayer[]): Float32Array {
  const [B, C, H, W] = xShape;
  const n = C * H * W;
  k.reset();
  const px = k.put(x.length === B * n ? x : x.subarray(0, B * n));
  const pgx = k.put(gx.length === B * n ? gx : gx.subarray(0, B * n));
  const pattr = k.alloc(B * n * 4);
  k.exports.input_part(px, pgx, B, n, 1, pattr);
  const groups = new Map<number, FullGradLayer[]>();
  for (const l of layers) {
    const key = l.h * 65536 + l.w;
    const list = groups.get(key);
    if (list) list.push(l);
    else groups.set(key, [l]);
  }
  for (const list of groups.values()) {
    const { h, w } = list[0];
    const hw = h * w;
    const pacc = k.alloc(B * hw * 4);
    k.f32(pacc, B * hw).fill(0);
    const ps = k.alloc(hw * 4);
    for (const l of list) {
      const pg = k.put(l.g);
      const pb = k.alloc(l.K * 4);
      const absb = k.f32(pb, l.K);
      for (let i = 0; i < l.K; i++) absb[i] = Math.abs(l.bias[i]);
      k.exports.bias_abs_maps(pg, pb, B, l.K, hw, pacc, ps);
    }
    k.exports.maps_to_image(pacc, B, h, w, C, H, W, pattr);
  }
  return k.f32(pattr, B * n).slice();
}
