/**
 * createVjp on the OnnxBackbone fixtures (fixtures/onnx: digits CNN, tiny ViT, tabular MLP, token classifier):
 * directional derivatives <grad, v> agree with central finite differences of <cotangent, logits>, w.r.t. the float
 * input and several weights (fed as overrides, which also exercises updated-weight feeds).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { TensorData } from '@sop/core';
import { type OnnxVjp, createVjp } from '../src/grad/index.js';
import { onnx, tensorDims, tensorValues } from '../src/grad/proto.js';
import { rand, relErr, repoRoot, tempCache } from '../src/grad/testing.js';

const dir = join(repoRoot, 'fixtures', 'onnx');
const cache = tempCache();
const vjps: OnnxVjp[] = [];
afterAll(async () => {
  for (const v of vjps) await v.dispose();
});

interface Fixture {
  name: string;
  wrt: string[];
  /** Relative tolerance of the directional check (ReLU + MaxPool nets are kinky: FD converges slowly). */
  tol?: number;
}

const fixtures: Fixture[] = [
  { name: 'digits-cnn', wrt: ['x', 'conv1.weight', 'conv3.bias', 'fc2.weight'], tol: 5e-2 },
  { name: 'shapes-vit', wrt: ['x', 'pos_embed', 'patch_embed.weight', 'blocks.0.norm1.weight', 'onnx::MatMul_220'] },
  { name: 'tabular-mlp', wrt: ['x', 'fc1.weight', 'out.bias'] },
  { name: 'token-classifier', wrt: ['tok.weight', 'dense.weight', 'classifier_weight'] },
];

for (const f of fixtures) {
  const path = join(dir, `${f.name}.onnx`);
  const refPath = join(dir, `${f.name}.reference.json`);
  describe.skipIf(!existsSync(path) || !existsSync(refPath))(`${f.name} (fixtures/onnx)`, () => {
    it('VJPs match finite differences w.r.t. the input and weights', async () => {
      const ref = JSON.parse(readFileSync(refPath, 'utf8')) as {
        inputs: Record<string, { shape: number[]; dtype: string; data: number[] }>;
        outputs: Record<string, { shape: number[]; data: number[] }>;
      };
      const model = onnx.ModelProto.decode(readFileSync(path));
      const inits = new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
      const feeds: Record<string, TensorData> = {};
      for (const [k, v] of Object.entries(ref.inputs)) {
        feeds[k] = { data: v.dtype === 'int64' ? BigInt64Array.from(v.data.map((n) => BigInt(n))) : Float32Array.from(v.data), shape: v.shape };
      }
      const vjp = await createVjp(path, { output: 'logits', wrt: f.wrt, cacheDir: cache, sessionOptions: { intraOpNumThreads: 1 } });
      vjps.push(vjp);
      const logits = ref.outputs.logits;
      const cot = rand(logits.data.length, 5);
      expect(relErr((await vjp.vjp(feeds, cot)).outputs.logits, logits.data)).toBeLessThan(1e-5);
      // Jitter float inputs: images with flat zero regions give exact MaxPool ties, where the loss has a kink.
      for (const [k, t] of Object.entries(feeds)) {
        if (t.data instanceof Float32Array) {
          const noise = rand(t.data.length, 77);
          feeds[k] = { data: t.data.map((v, i) => v + 0.01 * noise[i]), shape: t.shape };
        }
      }
      const res = await vjp.vjp(feeds, cot);

      const loss = async (over: Record<string, TensorData>): Promise<number> => {
        const r = await vjp.vjp({ ...feeds, ...over }, new Float32Array(cot.length));
        return r.outputs.logits.reduce((s, v, i) => s + v * cot[i], 0);
      };
      for (const w of f.wrt) {
        const base = feeds[w] ?? { data: Float32Array.from(tensorValues(inits.get(w)!)!), shape: tensorDims(inits.get(w)!) };
        const x0 = base.data as Float32Array;
        expect(res.grads[w].shape).toEqual(base.shape);
        const rms = Math.sqrt(x0.reduce((s, v) => s + v * v, 0) / x0.length) || 1;
        const eps = 1e-3 * rms;
        const analytic: number[] = [];
        const numeric: number[] = [];
        for (let k = 0; k < 3; k++) {
          const d = rand(x0.length, 100 + k);
          analytic.push(res.grads[w].data.reduce((s, g, i) => s + g * d[i], 0));
          const plus = x0.map((v, i) => v + eps * d[i]);
          const minus = x0.map((v, i) => v - eps * d[i]);
          numeric.push(((await loss({ [w]: { data: plus, shape: base.shape } })) - (await loss({ [w]: { data: minus, shape: base.shape } }))) / (2 * eps));
        }
        expect(relErr(analytic, numeric), `${f.name} d/d${w}: ${analytic} vs ${numeric}`).toBeLessThan(f.tol ?? 1e-2);
      }
    });
  });
}

describe.skipIf(!existsSync(join(dir, 'digits-cnn.onnx')) || !existsSync(join(dir, 'digits-cnn.reference.json')))('digits-cnn GradCAM', () => {
  it('gradient w.r.t. the last conv activation is constant over space (it feeds a global average pool)', async () => {
    const meta = JSON.parse(readFileSync(join(dir, 'digits-cnn.json'), 'utf8')) as { lastSpatial?: string };
    const ref = JSON.parse(readFileSync(join(dir, 'digits-cnn.reference.json'), 'utf8')) as {
      inputs: Record<string, { shape: number[]; data: number[] }>;
      intermediates: Record<string, { shape: number[] }>;
    };
    const act = meta.lastSpatial ?? '/relu3/Relu_output_0';
    const vjp = await createVjp(join(dir, 'digits-cnn.onnx'), { output: 'logits', wrt: [act], cacheDir: cache, sessionOptions: { intraOpNumThreads: 1 } });
    vjps.push(vjp);
    const x = ref.inputs.x;
    const cot = rand(x.shape[0] * 10, 11);
    const r = await vjp.vjp({ x: { data: Float32Array.from(x.data), shape: x.shape } }, cot);
    const g = r.grads[act];
    expect(g.shape).toEqual(ref.intermediates[act].shape);
    const [n, c, h, w] = g.shape;
    const hw = h * w;
    for (let k = 0; k < n * c; k++) {
      for (let p = 1; p < hw; p++) expect(g.data[k * hw + p]).toBeCloseTo(g.data[k * hw], 6);
    }
    expect(Math.max(...Array.from(g.data, Math.abs))).toBeGreaterThan(0);
  });
});
