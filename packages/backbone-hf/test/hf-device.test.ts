import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '@sop/core';
import { HfBackbone, addFloatOutputs, createOrtSession, findClassifier, loadOrt, readGraph } from '../src/index.js';

const ROOT = resolve(import.meta.dirname, '../../..');

describe('hf backbone: device and graph helpers', () => {
  it("device: cuda either runs or fails with a UserError saying what to install and to fall back to cpu", async () => {
    const r = await HfBackbone.load({ use: 'hf', path: 'fixtures/hf/tiny-vit', baseDir: ROOT, device: 'cuda' }).catch((e: unknown) => e);
    if (r instanceof HfBackbone) {
      expect(r.details.device).toBe('cuda');
      await r.dispose();
    } else {
      expect(r).toBeInstanceOf(UserError);
      expect((r as UserError).message).toContain('cuda');
      expect((r as UserError).fix).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12');
      expect((r as UserError).fix).toContain('backbone.device: cpu');
    }
  });

  it('wire-level fallback exposes an intermediate that onnxruntime then returns', async () => {
    const bytes = new Uint8Array(readFileSync(join(ROOT, 'fixtures/hf/tiny-bert/onnx/model.onnx')));
    const g = readGraph(bytes);
    expect(g.inputs).toEqual(['input_ids', 'attention_mask', 'token_type_ids']);
    expect(g.outputs).toEqual(['logits']);
    const cls = findClassifier(g, 'logits')!;
    expect(cls.input).toBe('pooler_output');
    expect(cls.shape).toEqual([2, 32]);
    const more = addFloatOutputs(bytes, ['pooler_output', 'last_hidden_state']);
    expect(readGraph(more).outputs).toEqual(['logits', 'pooler_output', 'last_hidden_state']);
    const s = await createOrtSession(more, 'cpu', 'test');
    const ort = loadOrt();
    const ids = new ort.Tensor('int64', BigInt64Array.from([2n, 5n, 3n]), [1, 3]);
    const ones = new ort.Tensor('int64', BigInt64Array.from([1n, 1n, 1n]), [1, 3]);
    const zeros = new ort.Tensor('int64', new BigInt64Array(3), [1, 3]);
    const r = await s.run({ input_ids: ids, attention_mask: ones, token_type_ids: zeros });
    expect(r.pooler_output.dims).toEqual([1, 32]);
    expect(r.last_hidden_state.dims).toEqual([1, 3, 32]);
    // logits = pooler_output · Wᵀ + b: check against the classifier weight read from the file
    const h = r.pooler_output.data as Float32Array;
    const z = r.logits.data as Float32Array;
    const w = cls.weight;
    const diff = (z[1] - z[0]) - h.reduce((a, v, k) => a + v * (w[32 + k] - w[k]), 0);
    const b = g.initializers.get('classifier.bias')!.floats!;
    expect(Math.abs(diff - (b[1] - b[0]))).toBeLessThan(1e-5);
    await s.release();
  });
});

describe('float16 conversion (fp16 model inputs/outputs)', () => {
  it('matches known IEEE half bit patterns and round-trips', async () => {
    const { floatToHalf, halfToFloat } = await import('../src/index.js');
    const vals = Float32Array.from([1, -2, 65504, 0.1, 0, 6.103515625e-5, 5.960464477539063e-8, 1e6]);
    expect(Array.from(floatToHalf(vals))).toEqual([0x3c00, 0xc000, 0x7bff, 0x2e66, 0, 0x0400, 0x0001, 0x7c00]);
    const back = halfToFloat(floatToHalf(Float32Array.from([0.333, -7.25, 1e-6, 1234.5])));
    expect(Array.from(back).map((v) => +v.toPrecision(4))).toEqual([0.333, -7.25, 1.013e-6, 1234]);
  });
});
