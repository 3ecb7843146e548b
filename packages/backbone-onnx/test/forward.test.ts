/** Batched forward: chunks of maxBatch concatenated back equal one call; fixture accuracy through the backbone. */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { argmaxRows, takeRows } from '@sop/core';
import type { Inputs, TensorData } from '@sop/core';
import { readNpy } from '@sop/core';
import { OnnxBackbone } from '../src/index.js';
import { fixture, maxAbsDiff, tempDir } from './helpers.js';

const cacheDir = tempDir();
const opened: OnnxBackbone[] = [];
afterAll(async () => {
  for (const b of opened) await b.dispose();
});
async function load(path: string, extra: Record<string, unknown> = {}): Promise<OnnxBackbone> {
  const b = await OnnxBackbone.load({ path, cacheDir, ...extra });
  opened.push(b);
  return b;
}

function shapesTest(): { x: TensorData; y: BigInt64Array } {
  const x = readNpy(fixture('shapes-test-x.npy'));
  const y = readNpy(fixture('shapes-test-y.npy'));
  return { x: { data: Float32Array.from(x.values!), shape: x.shape }, y: y.ints! };
}

describe('chunked forward', () => {
  it('maxBatch 7 (uneven chunks) equals one call, for outputs, hidden, embeddings and an exposed tensor', async () => {
    const { x } = shapesTest();
    const rows = takeRows(x, Array.from({ length: 50 }, (_, i) => i));
    const extra = { hidden: 'hidden', embeddings: 'tokens', expose: ['/patch_embed/Conv_output_0'] };
    const small = await load(fixture('shapes-vit.onnx'), { ...extra, maxBatch: 7 });
    const big = await load(fixture('shapes-vit.onnx'), { ...extra, maxBatch: 1000 });
    expect(small.maxBatch).toBe(7);
    const outputs = ['hidden', 'embeddings', '/patch_embed/Conv_output_0'];
    const a = await small.forward({ x: rows }, { outputs });
    const b = await big.forward({ x: rows }, { outputs });
    for (const k of ['output', ...outputs]) {
      expect(a[k]!.shape).toEqual(b[k]!.shape);
      expect(a[k]!.shape[0]).toBe(50);
      expect(maxAbsDiff(a[k]!.data, b[k]!.data)).toBeLessThan(1e-6);
    }
  });

  it('an empty batch gives empty outputs with the right row shapes', async () => {
    const b = await load(fixture('shapes-vit.onnx'), { hidden: 'hidden', embeddings: 'tokens' });
    const r = await b.forward({ x: { data: new Float32Array(0), shape: [0, 1, 16, 16] } }, { outputs: ['hidden', 'embeddings'] });
    expect(r.output.shape).toEqual([0, 4]);
    expect(r.hidden!.shape).toEqual([0, 32]);
    expect(r.embeddings!.shape).toEqual([0, 16, 32]);
    expect(r.output.data.length).toBe(0);
  });

  it('chunks int64 inputs together with their aux inputs', async () => {
    const ref = JSON.parse(readFileSync(fixture('token-classifier.reference.json'), 'utf8'));
    const t = (k: string): TensorData => ({ data: BigInt64Array.from(ref.inputs[k].data.map(BigInt)), shape: ref.inputs[k].shape });
    // 4 reference rows repeated 5x -> 20 rows, chunks of 3
    const idx = Array.from({ length: 20 }, (_, i) => i % 4);
    const inputs: Inputs = { x: takeRows(t('input_ids'), idx), attention_mask: takeRows(t('attention_mask'), idx), token_type_ids: takeRows(t('token_type_ids'), idx) };
    const small = await load(fixture('token-classifier.onnx'), { maxBatch: 3 });
    const r = await small.forward(inputs);
    expect(r.output.shape).toEqual([20, 2]);
    for (let i = 0; i < 20; i++) {
      for (let c = 0; c < 2; c++) expect(Math.abs(r.output.data[i * 2 + c] - ref.outputs.logits.data[(i % 4) * 2 + c])).toBeLessThan(1e-4);
    }
  });
});

describe('output selection', () => {
  it('backbone.output may name another graph output or an intermediate', async () => {
    const ref = JSON.parse(readFileSync(fixture('tabular-mlp.reference.json'), 'utf8'));
    const x: TensorData = { data: Float32Array.from(ref.inputs.x.data), shape: ref.inputs.x.shape };
    const h = await load(fixture('tabular-mlp.onnx'), { output: 'hidden' });
    expect(h.info.outputDim).toBe(16);
    expect(maxAbsDiff((await h.forward({ x })).output.data, ref.outputs.hidden.data)).toBeLessThan(1e-4);
    const name = Object.keys(ref.intermediates)[0];
    const i = await load(fixture('tabular-mlp.onnx'), { output: name });
    expect(i.info.outputDim).toBe(32);
    expect(maxAbsDiff((await i.forward({ x })).output.data, ref.intermediates[name].data)).toBeLessThan(1e-4);
  });
});

describe('fixtures through the backbone', () => {
  it('shapes-vit reaches the accuracy recorded at export on the shapes test split', async () => {
    const { x, y } = shapesTest();
    const meta = JSON.parse(readFileSync(fixture('shapes-vit.json'), 'utf8'));
    const b = await load(fixture('shapes-vit.onnx'));
    const pred = argmaxRows((await b.forward({ x })).output);
    let correct = 0;
    for (let i = 0; i < pred.length; i++) correct += Number(pred[i] === Number(y[i]));
    expect(pred.length).toBe(300);
    expect(correct / pred.length).toBeCloseTo(meta.testAccuracy, 3);
  });

  it('shapes data set: masks are binary and cover the object', () => {
    const m = readNpy(fixture('shapes-test-masks.npy'));
    expect(m.dtype).toBe('uint8');
    expect(m.shape).toEqual([300, 16, 16]);
    const per = 256;
    for (let i = 0; i < 300; i++) {
      let s = 0;
      for (let j = 0; j < per; j++) s += m.values![i * per + j];
      expect(s).toBeGreaterThan(5);
      expect(s).toBeLessThan(101);
    }
  });
});
