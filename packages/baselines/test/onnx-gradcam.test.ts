/**
 * GradCAM and FullGrad on the real ONNX fixtures (PyTorch exports) through OnnxBackbone: the default layers, and
 * GradCAM's per-feature values against a hand computation ReLU(Σ_k mean-grad_k · A_k) from the activation and
 * gradient the backbone returns, laid on / resized and summed into the patches.
 * (backbone-onnx is not a dependency of baselines; the test imports its source by path.)
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PatchesSpace, zeroMasker, type AttributionContext, type FloatTensor } from '@sop/core';
import { OnnxBackbone } from '../../backbone-onnx/src/index.js';
import { fullgrad } from '../src/methods/fullgrad.js';
import { gradcam } from '../src/methods/gradcam.js';

const FIX = resolve(import.meta.dirname, '../../../fixtures/onnx');
const cacheDir = mkdtempSync(join(tmpdir(), 'sop-baselines-onnx-'));

function refX(name: string): FloatTensor {
  const r = JSON.parse(readFileSync(`${FIX}/${name}.reference.json`, 'utf8')) as { inputs: { x: { data: number[]; shape: number[] } } };
  return { data: Float32Array.from(r.inputs.x.data), shape: r.inputs.x.shape };
}

/** Softmax-probability cotangent of the predicted class (GradCAM's default score), computed here. */
function probCotangent(logits: FloatTensor): { cot: FloatTensor; targets: number[] } {
  const [B, C] = logits.shape;
  const cot = new Float32Array(B * C);
  const targets: number[] = [];
  for (let b = 0; b < B; b++) {
    const z = Array.from(logits.data.subarray(b * C, (b + 1) * C));
    const c = z.indexOf(Math.max(...z));
    const e = z.map((v) => Math.exp(v - z[c]));
    const s = e.reduce((a, v) => a + v, 0);
    const p = e.map((v) => v / s);
    for (let j = 0; j < C; j++) cot[b * C + j] = p[c] * ((j === c ? 1 : 0) - p[j]);
    targets.push(c);
  }
  return { cot: { data: cot, shape: [B, C] }, targets };
}

/** ReLU(Σ_k mean_t G[t,k] · A[t,k]) per example over tokens/positions `first..last` of a [B, K, P] or [B, T, K] layout. */
function cam(A: FloatTensor, G: FloatTensor, layout: 'channels-first' | 'tokens', skip = 0): number[][] {
  const B = A.shape[0];
  const out: number[][] = [];
  for (let b = 0; b < B; b++) {
    if (layout === 'channels-first') {
      const [, K, h, w] = A.shape;
      const P = h * w;
      const m = new Array<number>(P).fill(0);
      for (let k = 0; k < K; k++) {
        let a = 0;
        for (let i = 0; i < P; i++) a += G.data[(b * K + k) * P + i];
        for (let i = 0; i < P; i++) m[i] += (a / P) * A.data[(b * K + k) * P + i];
      }
      out.push(m.map((v) => Math.max(0, v)));
    } else {
      const [, T, K] = A.shape;
      const P = T - skip;
      const m = new Array<number>(P).fill(0);
      for (let k = 0; k < K; k++) {
        let a = 0;
        for (let t = skip; t < T; t++) a += G.data[(b * T + t) * K + k];
        for (let t = skip; t < T; t++) m[t - skip] += (a / P) * A.data[(b * T + t) * K + k];
      }
      out.push(m.map((v) => Math.max(0, v)));
    }
  }
  return out;
}

/** 1-D weights of a ×2 bilinear upsampling (align_corners = false, edge-clamped): out[y] = Σ_i W[y][i] src[i]. */
function up2(n: number): number[][] {
  const W: number[][] = [];
  for (let y = 0; y < 2 * n; y++) {
    const row = new Array<number>(n).fill(0);
    const f = Math.max(0, (y + 0.5) / 2 - 0.5);
    const i0 = Math.min(n - 1, Math.floor(f));
    const i1 = Math.min(n - 1, i0 + 1);
    row[i0] += 1 - (f - i0);
    row[i1] += f - i0;
    W.push(row);
  }
  return W;
}

function context(backbone: OnnxBackbone, rowShape: number[], patch: [number, number]): AttributionContext {
  return { backbone, space: new PatchesSpace(rowShape, patch), masker: zeroMasker } as AttributionContext;
}

describe('GradCAM / FullGrad on ONNX backbones', () => {
  it('digits-cnn: default layer relu3; per-patch values = hand CAM (2×2 patches = the 4×4 map; 4×4 patches = resized, summed)', async () => {
    const b = await OnnxBackbone.load({ path: `${FIX}/digits-cnn.onnx`, cacheDir, maxBatch: 3 });
    const x = refX('digits-cnn');
    const B = x.shape[0];
    const logits = (await b.forward({ x })).output;
    const { cot, targets } = probCotangent(logits);
    const layer = '/relu3/Relu_output_0';
    const r = await b.vjp({ x }, { cotangents: { output: cot }, wrt: [layer] });
    const maps = cam(r.outputs[layer]!, r.grads[layer], 'channels-first');

    const fine = await gradcam.attribute({ x }, context(b, [1, 8, 8], [2, 2]), { target: 'predicted' });
    expect(fine.meta.layer).toBe(layer);
    expect(Array.from(fine.targets)).toEqual(targets);
    expect(fine.numFeatures).toBe(16);
    for (let bb = 0; bb < B; bb++) {
      const got = Array.from(fine.values.subarray(bb * 16, (bb + 1) * 16));
      const scale = Math.max(...maps[bb]);
      expect(scale).toBeGreaterThan(0);
      for (let i = 0; i < 16; i++) expect(Math.abs(got[i] - maps[bb][i])).toBeLessThan(1e-5 * scale + 1e-9);
    }

    // 4×4-pixel patches: the 4×4 map is upsampled to 8×8 and summed per 4×4 block
    const coarse = await gradcam.attribute({ x }, context(b, [1, 8, 8], [4, 4]), { target: 'predicted' });
    const U = up2(4);
    for (let bb = 0; bb < B; bb++) {
      const img = new Array<number>(64).fill(0);
      for (let y = 0; y < 8; y++) for (let xx = 0; xx < 8; xx++) for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) img[y * 8 + xx] += U[y][i] * U[xx][j] * maps[bb][i * 4 + j];
      const want = [0, 0, 0, 0];
      for (let y = 0; y < 8; y++) for (let xx = 0; xx < 8; xx++) want[Math.floor(y / 4) * 2 + Math.floor(xx / 4)] += img[y * 8 + xx];
      const scale = Math.max(...want);
      for (let f = 0; f < 4; f++) expect(Math.abs(coarse.values[bb * 4 + f] - want[f])).toBeLessThan(1e-5 * scale + 1e-9);
    }
    await b.dispose();
  });

  it('shapes-vit: default layer = tokens entering the last attention; CLS row dropped, 16 tokens on the 4×4 patch grid', async () => {
    const b = await OnnxBackbone.load({ path: `${FIX}/shapes-vit.onnx`, cacheDir, maxBatch: 3 });
    const x = refX('shapes-vit');
    const B = x.shape[0];
    const logits = (await b.forward({ x })).output;
    const { cot } = probCotangent(logits);
    const layer = '/blocks.1/norm1/LayerNormalization_output_0';
    const r = await b.vjp({ x }, { cotangents: { output: cot }, wrt: [layer] });
    const maps = cam(r.outputs[layer]!, r.grads[layer], 'tokens', 1);
    const a = await gradcam.attribute({ x }, context(b, [1, 16, 16], [4, 4]), { target: 'predicted' });
    expect(a.meta.layer).toBe(layer);
    expect(a.meta.mapShape).toEqual([4, 4]);
    let nonZero = 0;
    for (let bb = 0; bb < B; bb++) {
      const scale = Math.max(...maps[bb], 1e-12);
      for (let i = 0; i < 16; i++) {
        expect(Math.abs(a.values[bb * 16 + i] - maps[bb][i])).toBeLessThan(1e-5 * scale + 1e-9);
        if (a.values[bb * 16 + i] > 0) nonZero++;
      }
    }
    expect(nonZero).toBeGreaterThan(B * 4);
    // the option `layer` wins: the last block's output tokens carry no gradient (the head reads CLS) → all zero
    const z = await gradcam.attribute({ x }, context(b, [1, 16, 16], [4, 4]), { target: 'predicted', layer: 'tokens' });
    expect(z.values.every((v) => v === 0)).toBe(true);
    await b.dispose();
  });

  it('fullgrad on digits-cnn: default bias layers are the convs; without them (postprocess none) it is Σ x·∇x per patch', async () => {
    const b = await OnnxBackbone.load({ path: `${FIX}/digits-cnn.onnx`, cacheDir, maxBatch: 3 });
    const x = refX('digits-cnn');
    const ctx = context(b, [1, 8, 8], [2, 2]);
    const full = await fullgrad.attribute({ x }, ctx, { target: 3 });
    expect(full.meta.biasLayers).toEqual(['/conv1/Conv_output_0', '/conv2/Conv_output_0', '/conv3/Conv_output_0']);
    const inputOnly = await fullgrad.attribute({ x }, ctx, { target: 3, biasLayers: [], postprocess: 'none' });
    const cot = new Float32Array(40);
    for (let bb = 0; bb < 4; bb++) cot[bb * 10 + 3] = 1;
    const g = (await b.vjp({ x }, { cotangents: { output: { data: cot, shape: [4, 10] } } })).grads.x;
    for (let bb = 0; bb < 4; bb++) {
      for (let f = 0; f < 16; f++) {
        const [r0, c0] = [Math.floor(f / 4) * 2, (f % 4) * 2];
        let s = 0;
        for (let y = r0; y < r0 + 2; y++) for (let xx = c0; xx < c0 + 2; xx++) s += x.data[bb * 64 + y * 8 + xx] * g.data[bb * 64 + y * 8 + xx];
        expect(inputOnly.values[bb * 16 + f]).toBeCloseTo(s, 4);
      }
    }
    // the bias part adds mass: with it every example's total is larger than the input part alone (both ≥ 0)
    const absOnly = await fullgrad.attribute({ x }, ctx, { target: 3, biasLayers: [] });
    for (let bb = 0; bb < 4; bb++) {
      const sum = (v: Float32Array) => v.subarray(bb * 16, (bb + 1) * 16).reduce((a, c) => a + c, 0);
      expect(sum(full.values)).toBeGreaterThan(sum(absOnly.values) + 0.5);
    }
    await b.dispose();
  });
});
