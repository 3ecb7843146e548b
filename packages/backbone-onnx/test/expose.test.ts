/** Exposing intermediates writes a cached modified copy and never touches the user's file. */
import { copyFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OnnxBackbone, exposeOutputs, findLastSpatialTensor, hashBytes, loadModelProto, saveModelProto, createSession } from '../src/index.js';
import { fixture, tempDir } from './helpers.js';

describe('expose', () => {
  it('adds outputs in .sop-cache/ next to the model; the original file is byte-identical', async () => {
    const dir = tempDir();
    const path = join(dir, 'digits-cnn.onnx');
    copyFileSync(fixture('digits-cnn.onnx'), path);
    const before = hashBytes(readFileSync(path));
    const b = await OnnxBackbone.load({ path: 'digits-cnn.onnx', baseDir: dir, expose: ['/relu1/Relu_output_0', '/relu3/Relu_output_0'] });
    expect(b.sessionPath).not.toBe(b.modelPath);
    expect(b.sessionPath.startsWith(join(dir, '.sop-cache'))).toBe(true);
    // graph outputs not used as output/hidden/embeddings count as extra outputs too
    expect(b.info.extraOutputs).toEqual(['hidden', '/relu1/Relu_output_0', '/relu3/Relu_output_0']);
    const r = await b.forward({ x: { data: new Float32Array(2 * 64).fill(0.5), shape: [2, 1, 8, 8] } }, { outputs: ['/relu3/Relu_output_0'] });
    expect(r['/relu3/Relu_output_0']!.shape).toEqual([2, 32, 4, 4]);
    await b.dispose();
    expect(hashBytes(readFileSync(path))).toBe(before);
    // the same request reuses the cached file; a different one gets another file
    const again = await OnnxBackbone.load({ path, expose: ['/relu1/Relu_output_0', '/relu3/Relu_output_0'] });
    expect(again.sessionPath).toBe(b.sessionPath);
    const other = await OnnxBackbone.load({ path, expose: ['/relu1/Relu_output_0'] });
    expect(other.sessionPath).not.toBe(b.sessionPath);
    expect(readdirSync(join(dir, '.sop-cache')).length).toBe(2);
    expect(hashBytes(readFileSync(path))).toBe(before);
    await again.dispose();
    await other.dispose();
  });

  it('without expose the session runs the original file and writes nothing', async () => {
    const dir = tempDir();
    const path = join(dir, 'tabular-mlp.onnx');
    copyFileSync(fixture('tabular-mlp.onnx'), path);
    const b = await OnnxBackbone.load({ path, hidden: 'hidden' });
    expect(b.sessionPath).toBe(path);
    expect(existsSync(join(dir, '.sop-cache'))).toBe(false);
    await b.dispose();
  });

  it('exposeOutputs/saveModelProto/createSession work as plain helpers', async () => {
    const model = loadModelProto(fixture('tabular-mlp.onnx'));
    const exposed = exposeOutputs(model, ['/relu1/Relu_output_0']);
    expect(exposed.graph!.output!.map((o) => o.name)).toEqual(['logits', 'hidden', '/relu1/Relu_output_0']);
    expect(model.graph!.output!.length).toBe(2); // input model untouched
    const out = join(tempDir(), 'mlp-exposed.onnx');
    saveModelProto(exposed, out);
    const s = await createSession(out);
    expect(s.outputNames).toEqual(['logits', 'hidden', '/relu1/Relu_output_0']);
    await s.release();
  });

  it('findLastSpatialTensor: the tensor before global pooling in the CNN, nothing in the ViT', () => {
    expect(findLastSpatialTensor(loadModelProto(fixture('digits-cnn.onnx')))).toBe('/relu3/Relu_output_0');
    expect(findLastSpatialTensor(loadModelProto(fixture('shapes-vit.onnx')))).toBeUndefined();
    expect(findLastSpatialTensor(loadModelProto(fixture('tabular-mlp.onnx')))).toBeUndefined();
  });
});
