import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '@sop/core';
import { HfBackbone } from '../src/index.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const ref = JSON.parse(readFileSync(join(ROOT, 'fixtures/hf/tiny-vit/reference.json'), 'utf8')) as { pixel_values: number[][]; logits: number[][] };

describe('hf backbone gradients (delegated to @sop/backbone-onnx)', () => {
  it('image: vjp wrt pixel_values matches central finite differences', async () => {
    const bb = await HfBackbone.load({ use: 'hf', path: 'fixtures/hf/tiny-vit', baseDir: ROOT });
    expect(bb.capabilities.vjp).toBe(true);
    const n = 2;
    const x = { data: Float32Array.from(ref.pixel_values.slice(0, n).flat()), shape: [n, 3, 32, 32] };
    const cot = { data: Float32Array.from([1, -0.5, 0.25, 0, 1, 0]), shape: [n, 3] };
    const r = await bb.vjp({ x }, { cotangents: { output: cot } });
    expect(r.grads.x.shape).toEqual([n, 3, 32, 32]);
    for (let i = 0; i < 6; i++) expect(Math.abs(r.outputs.output.data[i] - ref.logits[Math.floor(i / 3)][i % 3])).toBeLessThan(1e-4);
    const f = async (d: Float32Array): Promise<number> => {
      const o = (await bb.forward({ x: { data: d, shape: x.shape } })).output.data;
      let s = 0;
      for (let i = 0; i < o.length; i++) s += o[i] * cot.data[i];
      return s;
    };
    const eps = 1e-2;
    for (const idx of [5, 300, 1000, 3072 + 77, 3072 + 2048 + 511]) {
      const p = Float32Array.from(x.data);
      const m = Float32Array.from(x.data);
      p[idx] += eps;
      m[idx] -= eps;
      const fd = ((await f(p)) - (await f(m))) / (2 * eps);
      expect(Math.abs(r.grads.x.data[idx] - fd)).toBeLessThan(2e-3 + 2e-2 * Math.abs(fd));
    }
    await bb.dispose();
  });

  it('text: vjp wrt token ids is refused with a fix; capability off', async () => {
    const bb = await HfBackbone.load({ use: 'hf', path: 'fixtures/hf/tiny-bert', baseDir: ROOT, maxLength: 8 });
    expect(bb.capabilities.vjp).toBe(false);
    const enc = bb.encodeTexts(['good']);
    const err = await bb.vjp({ x: enc.input_ids, attention_mask: enc.attention_mask }, { cotangents: { output: { data: new Float32Array([1, 0]), shape: [1, 2] } } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    await bb.dispose();
  });
});
