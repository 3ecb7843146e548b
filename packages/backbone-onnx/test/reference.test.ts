/**
 * onnxruntime outputs of the exported fixtures equal the PyTorch references written by tools/fixtures/*.py, for the
 * graph outputs and for intermediates exposed by name (atol 1e-4).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { OnnxBackbone } from '../src/index.js';
import type { Inputs } from '@sop/core';
import { expectClose, fixture, loadReference, maxAbsDiff, tempDir, toTensor } from './helpers.js';

const cacheDir = tempDir();
const opened: OnnxBackbone[] = [];
afterAll(async () => {
  for (const b of opened) await b.dispose();
});

async function load(name: string, extra: Record<string, unknown>, refIntermediates: string[]): Promise<OnnxBackbone> {
  const b = await OnnxBackbone.load({ path: fixture(`${name}.onnx`), cacheDir, expose: refIntermediates, ...extra });
  opened.push(b);
  return b;
}

describe.each([
  { name: 'digits-cnn', hidden: 'hidden', embeddings: undefined, classes: 10, k: 32 },
  { name: 'shapes-vit', hidden: 'hidden', embeddings: 'tokens', classes: 4, k: 32 },
  { name: 'tabular-mlp', hidden: 'hidden', embeddings: undefined, classes: 2, k: 16 },
])('$name matches PyTorch', ({ name, hidden, embeddings, classes, k }) => {
  const ref = loadReference(name);
  const inter = Object.keys(ref.intermediates);

  it('outputs, hidden, embeddings and exposed intermediates', async () => {
    const b = await load(name, { hidden, embeddings, classifierWeight: ref.classifierWeight.name }, inter);
    expect(b.info.outputDim).toBe(classes);
    expect(b.info.hiddenDim).toBe(k);
    expect(b.capabilities.hidden).toBe(true);
    expect(b.capabilities.embeddings).toBe(!!embeddings);
    const outputs = ['hidden', ...(embeddings ? ['embeddings'] : []), ...inter];
    const r = await b.forward({ x: toTensor(ref.inputs.x) } as Inputs, { outputs });
    expectClose(r.output, ref.outputs.logits);
    expectClose(r.hidden, ref.outputs.hidden);
    if (embeddings) {
      expectClose(r.embeddings, ref.outputs.tokens);
      expect(b.info.embeddingDim).toBe(k);
    }
    for (const n of inter) expectClose(r[n], ref.intermediates[n]);
    expect(inter.length).toBeGreaterThan(0);
    // default forward returns only `output`
    const plain = await b.forward({ x: toTensor(ref.inputs.x) } as Inputs);
    expect(Object.keys(plain)).toEqual(['output']);
    expect(maxAbsDiff(plain.output.data, r.output.data)).toBe(0);
  });

  it('classifierWeight [C, k] is the PyTorch Linear weight and reproduces the logits', async () => {
    const b = await load(name, { hidden, classifierWeight: ref.classifierWeight.name }, []);
    const w = b.info.classifierWeight!;
    expect(w.shape).toEqual([classes, k]);
    expect(ref.classifierWeight.shape).toEqual([classes, k]);
    if (name !== 'shapes-vit') {
      // logits = W h + bias: across rows the bias cancels, so logit_i - logit_0 = W (h_i - h_0)
      const r = await b.forward({ x: toTensor(ref.inputs.x) } as Inputs, { outputs: ['hidden'] });
      const h = r.hidden!.data;
      const z = r.output.data;
      for (let i = 1; i < r.output.shape[0]; i++) {
        for (let c = 0; c < classes; c++) {
          let wdh = 0;
          for (let j = 0; j < k; j++) wdh += w.data[c * k + j] * (h[i * k + j] - h[j]);
          expect(Math.abs(wdh - (z[i * classes + c] - z[c]))).toBeLessThan(1e-4);
        }
      }
    }
  });
});

describe('token-classifier (int64 inputs, aux inputs by graph name, MatMul classifier weight)', () => {
  const ref = loadReference('token-classifier');
  const inputs: Inputs = {
    x: toTensor(ref.inputs.input_ids),
    attention_mask: toTensor(ref.inputs.attention_mask),
    token_type_ids: toTensor(ref.inputs.token_type_ids),
  };

  it('feeds input_ids from x and the rest from aux keys; matches PyTorch', async () => {
    const b = await load('token-classifier', { hidden: 'hidden', embeddings: 'token_states', classifierWeight: 'classifier_weight' }, []);
    expect(b.inputName).toBe('input_ids');
    expect(b.auxInputNames.sort()).toEqual(['attention_mask', 'token_type_ids']);
    expect(b.info.inputShape).toBeUndefined(); // dynamic sequence axis
    const r = await b.forward(inputs, { outputs: ['hidden', 'embeddings'] });
    expectClose(r.output, ref.outputs.logits);
    expectClose(r.hidden, ref.outputs.hidden);
    expectClose(r.embeddings, ref.outputs.token_states);
  });

  it('transposes a [k, C] MatMul weight into classifierWeight [C, k]', async () => {
    const b = await load('token-classifier', { hidden: 'hidden', classifierWeight: 'classifier_weight' }, []);
    const w = b.info.classifierWeight!;
    expect(w.shape).toEqual([2, 16]);
    expect(maxAbsDiff(w.data, ref.classifierWeight.data!)).toBeLessThan(1e-7);
  });
});
