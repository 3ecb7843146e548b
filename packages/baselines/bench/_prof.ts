// scratch profiler (deleted before hand-off)
import { resolve } from 'node:path';
import { PatchesSpace, zeroMasker, type Backbone, type Inputs } from '@sop/core';
import { allAttributors } from '../src/index.js';
import { OnnxBackbone } from '../../backbone-onnx/src/index.js';
const ROOT = resolve(import.meta.dirname, '../../..');
const path = resolve(ROOT, 'fixtures/onnx/digits-cnn.onnx');
const bb = (await OnnxBackbone.load({ path, expose: ['/relu3/Relu_output_0'] })) as unknown as Backbone;
const B = 8;
const x = new Float32Array(B * 64);
for (let i = 0; i < x.length; i++) x[i] = (((i * 2654435761) >>> 0) % 1000) / 1000;
const inputs: Inputs = { x: { data: x, shape: [B, 1, 8, 8] } };
const space = new PatchesSpace([1, 8, 8], [2, 2]);
const ctx = { backbone: bb, space, masker: zeroMasker };
const want = (process.env.M ?? 'lime,kernel-shap,rise,archipelago,permutation-shap,gradcam,fullgrad,ampe').split(',');
const reps = Number(process.env.REPS ?? 30);
for (const m of allAttributors().filter((a) => want.includes(a.name))) {
  const opts = { seed: 0, ...(m.name === 'gradcam' ? { layer: '/relu3/Relu_output_0' } : {}) };
  await m.attribute(inputs, ctx, opts);
  let wall = 0, model = 0;
  const n = m.name === 'archipelago' ? Math.max(2, reps / 10) : reps;
  for (let r = 0; r < n; r++) {
    const t0 = performance.now();
    const a = await m.attribute(inputs, ctx, opts);
    wall += performance.now() - t0;
    model += a.meta.modelMs as number;
  }
  console.log(m.name.padEnd(18), 'wall/call', (wall / n).toFixed(3), 'model', (model / n).toFixed(3), 'outside', (1 - model / wall).toFixed(3));
}
