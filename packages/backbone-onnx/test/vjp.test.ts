/**
 * OnnxBackbone.vjp delegates to the gradient engine (src/grad, createVjp): input gradients match finite differences of
 * forward, weight gradients match the closed form, and chunking concatenates input grads / sums weight grads.
 */
import { describe, expect, it } from 'vitest';
import type { FloatTensor } from '@sop/core';
import { OnnxBackbone, annotateShapes, loadModelProto, valueInfoType } from '../src/index.js';
import { fixture, loadReference, maxAbsDiff, tempDir, toTensor } from './helpers.js';

const cacheDir = tempDir();

describe('vjp', () => {
  it('tabular-mlp: d(sum cot*logits)/dx matches central differences; chunked equals one-shot', async () => {
    const ref = loadReference('tabular-mlp');
    const x = toTensor(ref.inputs.x) as FloatTensor;
    const b = await OnnxBackbone.load({ path: fixture('tabular-mlp.onnx'), cacheDir, maxBatch: 3 });
    expect(b.capabilities.vjp).toBe(true);
    const cot: FloatTensor = { data: Float32Array.from([1, -0.5, 0.25, 2, -1, 0.5, 0.3, 0.7]), shape: [4, 2] };
    const r = await b.vjp({ x }, { cotangents: { output: cot } });
    expect(r.grads.x.shape).toEqual([4, 30]);
    expect(maxAbsDiff(r.outputs.output.data, ref.outputs.logits.data)).toBeLessThan(1e-4);
    const f = async (xx: FloatTensor) => {
      const o = (await b.forward({ x: xx })).output.data;
      let s = 0;
      for (let i = 0; i < o.length; i++) s += o[i] * cot.data[i];
      return s;
    };
    const eps = 1e-2;
    for (const j of [0, 7, 31, 59, 95, 119]) {
      const p = { data: Float32Array.from(x.data), shape: x.shape };
      const m = { data: Float32Array.from(x.data), shape: x.shape };
      p.data[j] += eps;
      m.data[j] -= eps;
      const fd = ((await f(p)) - (await f(m))) / (2 * eps);
      expect(Math.abs(fd - r.grads.x.data[j])).toBeLessThan(2e-3);
    }
    const one = await OnnxBackbone.load({ path: fixture('tabular-mlp.onnx'), cacheDir, maxBatch: 64 });
    const r1 = await one.vjp({ x }, { cotangents: { output: cot } });
    expect(maxAbsDiff(r1.grads.x.data, r.grads.x.data)).toBeLessThan(1e-6);
    await b.dispose();
    await one.dispose();
  });

  it('tabular-mlp: gradient wrt the classifier weight is cot^T hidden, summed over chunks', async () => {
    const ref = loadReference('tabular-mlp');
    const x = toTensor(ref.inputs.x) as FloatTensor;
    const b = await OnnxBackbone.load({ path: fixture('tabular-mlp.onnx'), cacheDir, maxBatch: 3, hidden: 'hidden' });
    const cot: FloatTensor = { data: Float32Array.from([1, 0, 0, 1, 1, 1, -1, 2]), shape: [4, 2] };
    const r = await b.vjp({ x }, { cotangents: { output: cot }, wrt: ['out.weight'] });
    const g = r.grads['out.weight'];
    expect(g.shape).toEqual([2, 16]);
    const h = ref.outputs.hidden.data;
    for (let c = 0; c < 2; c++) {
      for (let k = 0; k < 16; k++) {
        let s = 0;
        for (let i = 0; i < 4; i++) s += cot.data[i * 2 + c] * h[i * 16 + k];
        expect(Math.abs(g.data[c * 16 + k] - s)).toBeLessThan(1e-4);
      }
    }
    const empty = await b.vjp({ x: { data: new Float32Array(0), shape: [0, 30] } }, { cotangents: { output: { data: new Float32Array(0), shape: [0, 2] } }, wrt: ['x', 'out.weight'] });
    expect(empty.grads.x.shape).toEqual([0, 30]);
    expect(empty.grads['out.weight'].shape).toEqual([2, 16]);
    expect(empty.outputs.output.shape).toEqual([0, 2]);
    await b.dispose();
  });

  it('shapes-vit (no value_info in the export): annotated with measured shapes, input gradient matches differences', async () => {
    const ref = loadReference('shapes-vit');
    const x = toTensor(ref.inputs.x) as FloatTensor;
    const b = await OnnxBackbone.load({ path: fixture('shapes-vit.onnx'), cacheDir, maxBatch: 2 });
    const cot: FloatTensor = { data: Float32Array.from({ length: 16 }, (_, i) => ((i * 5) % 7) / 7 - 0.4), shape: [4, 4] };
    const r = await b.vjp({ x }, { cotangents: { output: cot } });
    expect(r.grads.x.shape).toEqual([4, 1, 16, 16]);
    const f = async (xx: FloatTensor) => {
      const o = (await b.forward({ x: xx })).output.data;
      let s = 0;
      for (let i = 0; i < o.length; i++) s += o[i] * cot.data[i];
      return s;
    };
    const eps = 1e-2;
    for (const j of [5, 100, 300, 517, 777, 1000]) {
      const p = { data: Float32Array.from(x.data), shape: x.shape };
      const m = { data: Float32Array.from(x.data), shape: x.shape };
      p.data[j] += eps;
      m.data[j] -= eps;
      const fd = ((await f(p)) - (await f(m))) / (2 * eps);
      expect(Math.abs(fd - r.grads.x.data[j])).toBeLessThan(2e-3);
    }
    await b.dispose();
  });

  it('annotateShapes fills graph.valueInfo with measured dtypes and shapes (batch symbolic)', async () => {
    const model = loadModelProto(fixture('shapes-vit.onnx'));
    expect(model.graph!.valueInfo!.length).toBe(0);
    const annotated = await annotateShapes(model);
    const vi = new Map(annotated.graph!.valueInfo!.map((v) => [v.name, valueInfoType(v)]));
    expect(vi.get('/blocks.0/Add_1_output_0')).toEqual({ dtype: 'float32', shape: ['batch', 17, 32] });
    expect(vi.get('/patch_embed/Conv_output_0')).toEqual({ dtype: 'float32', shape: ['batch', 32, 4, 4] });
    expect(model.graph!.valueInfo!.length).toBe(0); // input untouched
  });
});
