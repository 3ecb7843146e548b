import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError, SopModel, PatchesSpace, zeroMasker } from '@sop/core';
import type { Backbone, Inputs } from '@sop/core';
import { HfBackbone, patchMasks, toRawImages } from '../src/index.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const DIR = join(ROOT, 'fixtures/hf/tiny-vit');
const ref = JSON.parse(readFileSync(join(DIR, 'reference.json'), 'utf8')) as {
  images_chw_uint8: number[][];
  labels: number[];
  object_masks: number[][];
  pixel_values: number[][];
  logits: number[][];
  encoder_output_cls: number[][];
  classifier_weight: number[][];
};
const N = ref.labels.length;

function expectClose(actual: ArrayLike<number>, expected: number[], atol: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst).toBeLessThanOrEqual(atol);
}

let bb: HfBackbone;
beforeAll(async () => {
  bb = await HfBackbone.load({ use: 'hf', path: DIR, baseDir: '/', hidden: 'encoder_output', embeddings: 'encoder_output' });
});
afterAll(async () => {
  await bb?.dispose();
});

describe('hf image backbone (tiny ViT fixture)', () => {
  it('detects an image model from its preprocessor config', () => {
    expect(bb.details.task).toBe('image-classification');
    expect(bb.details.imageShape).toEqual([3, 32, 32]);
    expect(bb.details.patchSize).toBe(8);
    expect(bb.info).toMatchObject({ outputDim: 3, hiddenDim: 32, embeddingDim: 32, inputShape: [3, 32, 32] });
  });

  it('logits equal PyTorch for the reference pixel_values (atol 1e-4); hidden = [CLS] before the final LayerNorm', async () => {
    const x = { data: Float32Array.from(ref.pixel_values.flat()), shape: [N, 3, 32, 32] };
    const out = await bb.forward({ x }, { outputs: ['hidden', 'embeddings'] });
    expectClose(out.output.data, ref.logits.flat(), 1e-4);
    expectClose(out.hidden!.data, ref.encoder_output_cls.flat(), 1e-4);
    expect(out.embeddings!.shape).toEqual([N, 16, 32]); // [CLS] dropped: one row per patch
  });

  it("encode applies the model's preprocessor (rescale + normalise) and maps object masks to patches", async () => {
    const raw = { data: Float32Array.from(ref.images_chw_uint8.flat()), shape: [N, 3, 32, 32] };
    const inputMasks = { data: Float32Array.from(ref.object_masks.flat()), shape: [N, 32, 32] };
    const { inputs, featureMasks } = await bb.encode({ inputs: { x: raw }, labels: Float32Array.from(ref.labels), inputMasks });
    expect(inputs.x.shape).toEqual([N, 3, 32, 32]);
    expectClose(inputs.x.data as Float32Array, ref.pixel_values.flat(), 1e-6);
    const out = await bb.forward(inputs);
    expectClose(out.output.data, ref.logits.flat(), 1e-4);
    // 0..1 input gives the same pixel values
    const unit = { data: raw.data.map((v) => v / 255), shape: raw.shape };
    const enc1 = await bb.encode({ inputs: { x: unit }, labels: Float32Array.from(ref.labels) });
    expectClose(enc1.inputs.x.data as Float32Array, ref.pixel_values.flat(), 1e-6);
    // patch masks: a patch counts when ≥ half its pixels are object
    for (let i = 0; i < N; i++) {
      for (let p = 0; p < 16; p++) {
        const [pr, pc] = [Math.floor(p / 4), p % 4];
        let on = 0;
        for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) on += ref.object_masks[i][(pr * 8 + y) * 32 + pc * 8 + x];
        expect(featureMasks![i * 16 + p]).toBe(on >= 32 ? 1 : 0);
      }
    }
  });

  it('resizes other image sizes to the model size; HWC layout accepted', async () => {
    const big = { data: new Float32Array(2 * 48 * 48 * 3).fill(128), shape: [2, 48, 48, 3] };
    const { inputs } = await bb.encode({ inputs: { x: big }, labels: new Float32Array(2) });
    expect(inputs.x.shape).toEqual([2, 3, 32, 32]);
    expectClose((inputs.x.data as Float32Array).subarray(0, 4), [128 / 255 / 0.5 - 1, 128 / 255 / 0.5 - 1, 128 / 255 / 0.5 - 1, 128 / 255 / 0.5 - 1], 1e-6);
    expect(toRawImages(big)[0].channels).toBe(3);
    expect(Array.from(patchMasks({ data: new Float32Array(64 * 64).fill(1), shape: [1, 64, 64] }, [32, 32], 8))).toEqual(new Array(16).fill(1));
  });

  it('already-normalised images are refused with a fix; default hidden is the classifier input', async () => {
    const x = { data: Float32Array.from(ref.pixel_values.flat()), shape: [N, 3, 32, 32] };
    await expect(bb.encode({ inputs: { x }, labels: new Float32Array(N) })).rejects.toBeInstanceOf(UserError);
    const pre = await HfBackbone.load({ use: 'hf', path: DIR, baseDir: '/', preprocess: false });
    const { inputs } = await pre.encode({ inputs: { x }, labels: new Float32Array(N) });
    expect(inputs.x.data).toBe(x.data);
    await pre.dispose();
    const dflt = await HfBackbone.load({ use: 'hf', path: DIR, baseDir: '/' });
    expect(dflt.capabilities.hidden).toBe(true);
    expectClose(dflt.info.classifierWeight!.data, ref.classifier_weight.flat(), 0);
    await dflt.dispose();
  });

  it('inside SOP: predictions with the masked rows handed over in WebAssembly memory equal those of a backbone given copies', async () => {
    const x = Float32Array.from(ref.pixel_values.flat());
    const inputs: Inputs = { x: { data: x, shape: [N, 3, 32, 32] } };
    const copies: Backbone = {
      name: bb.name,
      info: bb.info,
      capabilities: bb.capabilities,
      forward: (inp, o) => bb.forward({ ...inp, x: { data: (inp.x.data as Float32Array).slice(), shape: inp.x.shape } }, o),
    };
    const opts = { groups: 8, keep: 0.25, maskBatchSize: 7, seed: 3 };
    const make = (backbone: Backbone) => new SopModel({ backbone, space: new PatchesSpace([3, 32, 32], [8, 8]), masker: zeroMasker, task: 'classification', numOutputs: 3 }, inputs, opts);
    const got = await make(bb).predict(inputs);
    const want = await make(copies).predict(inputs);
    for (const k of ['output', 'masks', 'weights', 'groupOutputs'] as const) expect(Array.from(got[k])).toEqual(Array.from(want[k]));
    expect(got.evaluations).toBe(N * 8);
  });
});
