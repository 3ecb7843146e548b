/** inspectModel / formatInspection list inputs, outputs, initializers and intermediates with dtypes and shapes. */
import { describe, expect, it } from 'vitest';
import { formatInspection, inspectModel } from '../src/index.js';
import { fixture } from './helpers.js';

describe('inspectModel', () => {
  it('digits-cnn: declared and measured shapes, weights, GradCAM target', async () => {
    const info = await inspectModel(fixture('digits-cnn.onnx'));
    expect(info.inputs).toEqual([{ name: 'x', kind: 'input', op: undefined, dtype: 'float32', shape: ['batch', 1, 8, 8], shapeSource: 'graph' }]);
    expect(info.outputs.map((o) => [o.name, o.shape])).toEqual([
      ['logits', ['batch', 10]],
      ['hidden', ['batch', 32]],
    ]);
    const fc2 = info.initializers.find((t) => t.name === 'fc2.weight')!;
    expect(fc2.shape).toEqual([10, 32]);
    // conv 16*1*9+16 + 32*16*9+32 + 32*32*9+32 + fc1 32*32+32 + fc2 32*10+10
    expect(info.parameterCount).toBe(160 + 4640 + 9248 + 1056 + 330);
    const relu3 = info.intermediates.find((t) => t.name === '/relu3/Relu_output_0')!;
    expect(relu3).toMatchObject({ op: 'Relu', dtype: 'float32', shape: ['batch', 32, 4, 4], shapeSource: 'run' });
    const relu1 = info.intermediates.find((t) => t.name === '/relu1/Relu_output_0')!;
    expect(relu1.shape).toEqual(['batch', 16, 8, 8]);
    expect(info.lastSpatialTensor).toBe('/relu3/Relu_output_0');
    expect(info.opsets).toEqual([{ domain: 'ai.onnx', version: 17 }]);
    expect(info.runError).toBeUndefined();

    const text = formatInspection(info);
    expect(text).toContain('inputs (1)');
    expect(text).toMatch(/x\s+float32\s+\[batch, 1, 8, 8\]/);
    expect(text).toMatch(/\/relu3\/Relu_output_0\s+float32\s+\[batch, 32, 4, 4\]\*\s+Relu/);
    expect(text).toContain('last spatial tensor (GradCAM target): /relu3/Relu_output_0');
    expect(text).toMatch(/fc2\.weight\s+float32\s+\[10, 32\]/);
  });

  it('shapes-vit: patch tokens, CLS and block outputs measured by the dummy run', async () => {
    const info = await inspectModel(fixture('shapes-vit.onnx'));
    const byName = new Map([...info.outputs, ...info.intermediates].map((t) => [t.name, t]));
    expect(byName.get('tokens')!.shape).toEqual(['batch', 16, 32]);
    expect(byName.get('hidden')!.shape).toEqual(['batch', 32]);
    expect(byName.get('/patch_embed/Conv_output_0')!.shape).toEqual(['batch', 32, 4, 4]);
    expect(byName.get('/blocks.0/Add_1_output_0')!.shape).toEqual(['batch', 17, 32]);
  });

  it('token-classifier: int64 inputs with symbolic batch and sequence; dims that follow the sequence are ?', async () => {
    const info = await inspectModel(fixture('token-classifier.onnx'));
    expect(info.inputs.map((i) => [i.name, i.dtype, i.shape])).toEqual([
      ['input_ids', 'int64', ['batch', 'sequence']],
      ['attention_mask', 'int64', ['batch', 'sequence']],
      ['token_type_ids', 'int64', ['batch', 'sequence']],
    ]);
    const byName = new Map([...info.outputs, ...info.intermediates].map((t) => [t.name, t]));
    expect(byName.get('token_states')!.shape).toEqual(['batch', 'sequence', 16]);
    expect(byName.get('hidden')!.shape).toEqual(['batch', 16]);
    expect(byName.get('/tok/Gather_output_0')!.shape).toEqual(['batch', '?', 16]);
    expect(info.initializers.find((t) => t.name === 'classifier_weight')!.shape).toEqual([16, 2]);
  });

  it('run: false skips the dummy run (shapes of intermediates unknown)', async () => {
    const info = await inspectModel(fixture('digits-cnn.onnx'), { run: false });
    expect(info.intermediates.find((t) => t.name === '/relu3/Relu_output_0')!.shapeSource).toBe('unknown');
    expect(info.lastSpatialTensor).toBe('/relu3/Relu_output_0');
  });
});
