/**
 * OnnxBackbone.vjp with `wrt` naming intermediate tensors (their gradients and forward values from the same pass) and
 * with `params` (replacement initializer values), chunked over maxBatch; the default GradCAM / FullGrad layers.
 */
import { describe, expect, it } from 'vitest';
import { UserError, type FloatTensor } from '@sop/core';
import { OnnxBackbone } from '../src/index.js';
import { fixture, loadReference, maxAbsDiff, tempDir, toTensor } from './helpers.js';

const cacheDir = tempDir();
const RELU3 = '/relu3/Relu_output_0';
const BIASES = ['conv1.bias', 'conv2.bias', 'conv3.bias', 'fc1.bias', 'fc2.bias'];

function oneHot(rows: number[], C: number): FloatTensor {
  const data = new Float32Array(rows.length * C);
  rows.forEach((c, b) => (data[b * C + c] = 1));
  return { data, shape: [rows.length, C] };
}

describe('vjp wrt intermediates and params', () => {
  it('digits-cnn: relu3 value = PyTorch, its gradient agrees with the conv3 bias gradient, chunks = one shot', async () => {
    const ref = loadReference('digits-cnn');
    const x = toTensor(ref.inputs.x) as FloatTensor;
    const cot = oneHot([3, 1, 7, 0], 10);
    const small = await OnnxBackbone.load({ path: fixture('digits-cnn.onnx'), cacheDir, maxBatch: 3 });
    const r = await small.vjp({ x }, { cotangents: { output: cot }, wrt: [RELU3, 'x', 'conv3.bias'] });
    const A = r.outputs[RELU3]!;
    const G = r.grads[RELU3];
    expect(A.shape).toEqual([4, 32, 4, 4]);
    expect(G.shape).toEqual([4, 32, 4, 4]);
    expect(maxAbsDiff(A.data, ref.intermediates[RELU3].data)).toBeLessThan(1e-4);
    expect(maxAbsDiff(r.outputs.output.data, ref.outputs.logits.data)).toBeLessThan(1e-4);
    // relu3 = ReLU(conv3 + b): dL/db_k = Σ_b Σ_i dL/dA[b,k,i] · 1[A > 0]
    for (let k = 0; k < 32; k++) {
      let s = 0;
      for (let b = 0; b < 4; b++) for (let i = 0; i < 16; i++) if (A.data[(b * 32 + k) * 16 + i] > 0) s += G.data[(b * 32 + k) * 16 + i];
      expect(Math.abs(s - r.grads['conv3.bias'].data[k])).toBeLessThan(1e-4);
    }
    // relu3 feeds a global average pool: the gradient is constant over the 4×4 map
    for (let o = 0; o < G.data.length; o += 16) for (let i = 1; i < 16; i++) expect(G.data[o + i]).toBeCloseTo(G.data[o], 6);
    const one = await OnnxBackbone.load({ path: fixture('digits-cnn.onnx'), cacheDir, maxBatch: 64 });
    const r1 = await one.vjp({ x }, { cotangents: { output: cot }, wrt: [RELU3, 'x', 'conv3.bias'] });
    expect(maxAbsDiff(r1.grads[RELU3].data, G.data)).toBeLessThan(1e-6);
    expect(maxAbsDiff(r1.outputs[RELU3]!.data, A.data)).toBeLessThan(1e-6);
    expect(maxAbsDiff(r1.grads.x.data, r.grads.x.data)).toBeLessThan(1e-6);
    expect(maxAbsDiff(r1.grads['conv3.bias'].data, r.grads['conv3.bias'].data)).toBeLessThan(1e-5);
    // zero rows: shapes only
    const e = await small.vjp({ x: { data: new Float32Array(0), shape: [0, 1, 8, 8] } }, { cotangents: { output: { data: new Float32Array(0), shape: [0, 10] } }, wrt: [RELU3, 'conv3.bias'] });
    expect(e.outputs[RELU3]!.shape).toEqual([0, 32, 4, 4]);
    expect(e.grads[RELU3].shape).toEqual([0, 32, 4, 4]);
    expect(e.grads['conv3.bias'].data.every((v) => v === 0)).toBe(true);
    expect(await small.gradcamLayer()).toBe(RELU3);
    expect(small.fullgradBiasLayers()).toEqual([
      { output: '/conv1/Conv_output_0', bias: 'conv1.bias' },
      { output: '/conv2/Conv_output_0', bias: 'conv2.bias' },
      { output: '/conv3/Conv_output_0', bias: 'conv3.bias' },
    ]);
    await small.dispose();
    await one.dispose();
  });

  it('digits-cnn (ReLU, max-pool: piecewise linear): logit = Σ x·∇x + Σ_layers b·∂logit/∂b, also with replaced weights', async () => {
    const ref = loadReference('digits-cnn');
    const x = toTensor(ref.inputs.x) as FloatTensor;
    const b = await OnnxBackbone.load({ path: fixture('digits-cnn.onnx'), cacheDir, maxBatch: 3 });
    const targets = [3, 1, 7, 0];
    const check = async (params?: Record<string, FloatTensor>) => {
      const values = { ...b.parameters(), ...params };
      let total = 0;
      let logitSum = 0;
      const r = await b.vjp({ x }, { cotangents: { output: oneHot(targets, 10) }, wrt: ['x', ...BIASES], params });
      for (let i = 0; i < x.data.length; i++) total += x.data[i] * r.grads.x.data[i];
      for (const n of BIASES) for (let k = 0; k < values[n].data.length; k++) total += values[n].data[k] * r.grads[n].data[k];
      targets.forEach((c, row) => (logitSum += r.outputs.output.data[row * 10 + c]));
      expect(Math.abs(total - logitSum)).toBeLessThan(1e-3 * Math.max(1, Math.abs(logitSum)));
      return r;
    };
    const base = await check();
    // new weights: fc2.bias + 1 shifts every logit by 1; conv3.bias changed moves the logits and the identity still holds
    const fc2b = b.parameters()['fc2.bias'];
    const shifted = { data: fc2b.data.map((v) => v + 1), shape: fc2b.shape };
    const c3 = b.parameters()['conv3.bias'];
    const moved = { data: c3.data.map((v, i) => v + 0.3 * Math.cos(i)), shape: c3.shape };
    const r2 = await check({ 'fc2.bias': shifted, 'conv3.bias': moved });
    const r3 = await b.vjp({ x }, { cotangents: { output: oneHot(targets, 10) }, wrt: ['x'], params: { 'fc2.bias': shifted } });
    for (let i = 0; i < 40; i++) expect(r3.outputs.output.data[i]).toBeCloseTo(base.outputs.output.data[i] + 1, 4);
    expect(maxAbsDiff(r3.grads.x.data, base.grads.x.data)).toBeLessThan(1e-5);
    expect(maxAbsDiff(r2.outputs.output.data, base.outputs.output.data)).toBeGreaterThan(0.1);
    // weight gradients are summed over the chunks (maxBatch 3 on 4 rows) under replaced weights too
    const one = await OnnxBackbone.load({ path: fixture('digits-cnn.onnx'), cacheDir, maxBatch: 64 });
    const r4 = await one.vjp({ x }, { cotangents: { output: oneHot(targets, 10) }, wrt: ['x', ...BIASES], params: { 'fc2.bias': shifted, 'conv3.bias': moved } });
    for (const n of BIASES) expect(maxAbsDiff(r4.grads[n].data, r2.grads[n].data)).toBeLessThan(1e-4);
    await expect(b.vjp({ x }, { cotangents: { output: oneHot(targets, 10) }, params: { 'fc2.bias': { data: new Float32Array(3), shape: [3] } } })).rejects.toThrow(UserError);
    await expect(b.vjp({ x }, { cotangents: { output: oneHot(targets, 10) }, params: { 'fc2.bais': shifted } })).rejects.toThrow(/not an initializer.*fc2\.bias/);
    await expect(b.vjp({ x }, { cotangents: { output: oneHot(targets, 10) }, wrt: ['/relu9/Relu_output_0'] })).rejects.toThrow(/relu3|relu1/);
    await b.dispose();
    await one.dispose();
  });

  it("shapes-vit: 'tokens' (last block output) has zero gradient, the default GradCAM layer (input of the last attention) does not", async () => {
    const ref = loadReference('shapes-vit');
    const x = toTensor(ref.inputs.x) as FloatTensor;
    const b = await OnnxBackbone.load({ path: fixture('shapes-vit.onnx'), cacheDir, maxBatch: 3 });
    const layer = await b.gradcamLayer();
    expect(layer).toBe('/blocks.1/norm1/LayerNormalization_output_0');
    const cot = oneHot([0, 1, 2, 3], 4);
    const r = await b.vjp({ x }, { cotangents: { output: cot }, wrt: ['tokens', layer!] });
    expect(r.outputs.tokens!.shape).toEqual([4, 16, 32]);
    expect(maxAbsDiff(r.outputs.tokens!.data, ref.outputs.tokens.data)).toBeLessThan(1e-4);
    expect(r.grads.tokens.data.every((v) => v === 0)).toBe(true);
    expect(r.outputs[layer!]!.shape).toEqual([4, 17, 32]);
    const G = r.grads[layer!];
    // per patch token (rows 1..16) the gradient is non-zero
    for (let bb = 0; bb < 4; bb++) for (let t = 1; t < 17; t++) {
      let n = 0;
      for (let k = 0; k < 32; k++) n += Math.abs(G.data[(bb * 17 + t) * 32 + k]);
      expect(n).toBeGreaterThan(1e-6);
    }
    // the value from the vjp equals a forward with the tensor exposed
    const exposed = await OnnxBackbone.load({ path: fixture('shapes-vit.onnx'), cacheDir, expose: [layer!] });
    const f = await exposed.forward({ x }, { outputs: [layer!] });
    expect(maxAbsDiff(f[layer!]!.data, r.outputs[layer!]!.data)).toBeLessThan(1e-5);
    const g = await OnnxBackbone.load({ path: fixture('shapes-vit.onnx'), cacheDir, gradcamLayer: 'tokens' });
    expect(await g.gradcamLayer()).toBe('tokens');
    await expect(OnnxBackbone.load({ path: fixture('shapes-vit.onnx'), cacheDir, gradcamLayer: 'tokenz' })).rejects.toThrow(/gradcamLayer.*tokens/);
    await b.dispose();
    await exposed.dispose();
    await g.dispose();
  });
});
