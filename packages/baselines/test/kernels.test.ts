import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PatchesSpace, Rng } from '@sop/core';
import { baselineKernels, camMapsKernel, fullgradFeaturesKernel, fullgradKernel, targetProbsKernel } from '../src/kernels/index.js';
import { KERNELS_SOURCE_SHA256 } from '../src/kernels/kernels-wasm.js';
import { fullgradPostprocess } from '../src/methods/fullgrad.js';
import { addMapsToImage, resizeBilinear } from '../src/spatial.js';
import { camMaps } from '../src/methods/gradcam.js';

const rng = new Rng(21);
/** Gradient-like values: a third exactly zero (ReLU), the rest signed. */
const values = (n: number): Float32Array => Float32Array.from({ length: n }, () => (rng.next() < 0.33 ? 0 : rng.normal()));

describe('baseline WebAssembly kernels', () => {
  it('were built from the current kernels.c (rebuild: node tools/wasm/build-kernels.mjs baselines)', () => {
    const src = readFileSync(resolve(import.meta.dirname, '../wasm/kernels.c'));
    expect(createHash('sha256').update(src).update(readFileSync(new URL('../../core/wasm/simd-math.h', import.meta.url))).digest('hex')).toBe(KERNELS_SOURCE_SHA256);
  });

  const k = baselineKernels();
  it.runIf(k !== null)('cam_maps equals the JavaScript channel-weighted maps', () => {
    for (const [B, K, hw] of [[3, 5, 16], [2, 7, 9], [1, 3, 1], [8, 32, 16]]) {
      const G = values(B * K * hw);
      const A = values(B * K * hw);
      const js = camMaps(G, A, B, K, hw);
      const wasm = camMapsKernel(k!, G, A, B, K, hw);
      for (let i = 0; i < js.length; i++) expect(wasm[i]).toBeCloseTo(js[i], 4);
    }
  });

  it.runIf(k !== null)('target_probs equals the float64 softmax of the target (C with and without a tail of 4, extreme logits)', () => {
    for (const [R, C, per] of [[40, 10, 4], [12, 3, 1], [9, 8, 3], [7, 1001, 7], [5, 2, 5]]) {
      const z = Float32Array.from({ length: R * C }, () => rng.normal() * 8);
      // a few extreme logits: far above and far below the rest
      z[0] = 300;
      z[C + 1] = -300;
      const B = Math.ceil(R / per);
      const targets = Int32Array.from({ length: B }, () => Math.floor(rng.next() * C));
      const out = new Float64Array(R);
      targetProbsKernel(k!, z, targets, R, C, per, out);
      for (let r = 0; r < R; r++) {
        const t = targets[Math.floor(r / per)];
        let mx = -Infinity;
        for (let j = 0; j < C; j++) mx = Math.max(mx, z[r * C + j]);
        let s = 0;
        for (let j = 0; j < C; j++) s += Math.exp(z[r * C + j] - mx);
        const p = Math.exp(z[r * C + t] - mx) / s;
        expect(Math.abs(out[r] - p)).toBeLessThanOrEqual(2e-6 * Math.max(p, 1e-30) + 1e-37);
      }
    }
  });

  it.runIf(k !== null)('fullgradKernel equals the JavaScript post-processing (layers of three sizes, pixel counts with and without a tail of 4 and of 16, resized onto C = 3 channels, a constant map)', () => {
    const [B, C, H, W] = [3, 3, 8, 6];
    const n = C * H * W;
    const x = values(B * n);
    const gx = values(B * n);
    const layers = [
      { K: 4, h: 8, w: 6 },
      { K: 5, h: 4, w: 3 },
      { K: 2, h: 8, w: 6 },
      { K: 3, h: 3, w: 5 },
      { K: 32, h: 4, w: 4 },
    ].map((l) => ({ ...l, g: values(B * l.K * l.h * l.w), bias: values(l.K) }));
    // a layer whose |∇z ⊙ b| is constant: ψ = 0, it adds nothing
    layers.push({ K: 2, h: 2, w: 2, g: new Float32Array(B * 8).fill(2), bias: Float32Array.of(1, -1) });
    const js = fullgradPostprocess(x, gx, B, n, [B, C, H, W], layers, true);
    const wasm = fullgradKernel(k!, x, gx, [B, C, H, W], layers);
    expect(wasm.length).toBe(js.length);
    for (let i = 0; i < js.length; i++) expect(wasm[i]).toBeCloseTo(js[i], 4);
  });

  it.runIf(k !== null)('fullgradKernel on one channel with an odd pixel count (same-size maps with a tail of 3, maps resized along one axis only), into an output buffer', () => {
    const [B, C, H, W] = [2, 1, 5, 7];
    const n = C * H * W;
    const x = values(B * n);
    const gx = values(B * n);
    const layers = [
      { K: 3, h: 5, w: 7 },
      { K: 6, h: 5, w: 3 },
      { K: 5, h: 2, w: 7 },
      { K: 4, h: 5, w: 7 },
    ].map((l) => ({ ...l, g: values(B * l.K * l.h * l.w), bias: values(l.K) }));
    const js = fullgradPostprocess(x, gx, B, n, [B, C, H, W], layers, true);
    const out = new Float32Array(B * n + 5).fill(7);
    const wasm = fullgradKernel(k!, x, gx, [B, C, H, W], layers, out);
    expect(wasm.length).toBe(B * n);
    expect(wasm.buffer).toBe(out.buffer);
    expect(out[B * n]).toBe(7);
    for (let i = 0; i < js.length; i++) expect(wasm[i]).toBeCloseTo(js[i], 4);
  });

  it.runIf(k !== null)('fullgradFeaturesKernel equals fullgradKernel aggregated by core\'s PatchesSpace (bit for bit: same float32 sums in the same order)', () => {
    for (const [B, C, H, W, ph, pw] of [[3, 3, 8, 6, 2, 2], [2, 1, 7, 5, 3, 2]]) {
      const n = C * H * W;
      const x = values(B * n);
      const gx = values(B * n);
      const layers = [
        { K: 4, h: H, w: W },
        { K: 8, h: Math.ceil(H / 2), w: Math.ceil(W / 2) },
      ].map((l) => ({ ...l, g: values(B * l.K * l.h * l.w), bias: values(l.K) }));
      const space = new PatchesSpace([C, H, W], [ph, pw]);
      const inputs = { x: { data: x, shape: [B, C, H, W] } };
      const ref = space.aggregate({ data: fullgradKernel(k!, x, gx, [B, C, H, W], layers), shape: [B, C, H, W] }, inputs).data;
      const fused = fullgradFeaturesKernel(k!, x, gx, [B, C, H, W], layers, space.pixelFeature, space.numFeatures);
      expect(Array.from(fused)).toEqual(Array.from(ref));
    }
  });

  it('addMapsToImage adds resizeBilinear(map) / C on every channel', () => {
    const [B, C, h, w, H, W] = [2, 3, 3, 5, 7, 9];
    const maps = values(B * h * w);
    const out = new Float32Array(B * C * H * W).fill(1);
    addMapsToImage(maps, B, h, w, [B, C, H, W], out);
    for (let b = 0; b < B; b++) {
      const up = resizeBilinear(maps.subarray(b * h * w, (b + 1) * h * w), h, w, H, W);
      for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) expect(out[(b * C + c) * H * W + i] - 1).toBeCloseTo(up[i] / C, 5);
    }
  });
});
