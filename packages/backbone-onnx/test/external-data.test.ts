/**
 * Models whose weights live in an external data file (the > 2 GB layout): exposing intermediates, reading the
 * classifier weight and inspecting still work, and the user's files stay untouched.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OnnxBackbone, hashBytes, inspectModel, loadModelProto, onnx, saveModelProto } from '../src/index.js';
import { fixture, loadReference, maxAbsDiff, tempDir, toTensor } from './helpers.js';

/** digits-cnn with every initializer moved to `weights.bin` (dataLocation EXTERNAL). */
function externalCopy(dir: string): string {
  const model = loadModelProto(fixture('digits-cnn.onnx'));
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of model.graph!.initializer!) {
    const raw = t.rawData!;
    expect(raw.length).toBeGreaterThan(0);
    chunks.push(Uint8Array.from(raw));
    t.rawData = new Uint8Array(0);
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.externalData = [
      onnx.StringStringEntryProto.create({ key: 'location', value: 'weights.bin' }),
      onnx.StringStringEntryProto.create({ key: 'offset', value: String(offset) }),
      onnx.StringStringEntryProto.create({ key: 'length', value: String(raw.length) }),
    ];
    offset += raw.length;
  }
  const all = new Uint8Array(offset);
  let o = 0;
  for (const c of chunks) {
    all.set(c, o);
    o += c.length;
  }
  writeFileSync(join(dir, 'weights.bin'), all);
  const path = join(dir, 'model.onnx');
  saveModelProto(model, path);
  return path;
}

describe('external data', () => {
  it('forward with an exposed intermediate, classifierWeight and inspect', async () => {
    const dir = tempDir();
    const path = externalCopy(dir);
    const before = [hashBytes(readFileSync(path)), hashBytes(readFileSync(join(dir, 'weights.bin')))];
    const ref = loadReference('digits-cnn');
    const name = ref.lastSpatial!;
    const b = await OnnxBackbone.load({ path, hidden: 'hidden', expose: [name], classifierWeight: 'fc2.weight' });
    expect(b.sessionPath).not.toBe(path);
    const r = await b.forward({ x: toTensor(ref.inputs.x) }, { outputs: ['hidden', name] });
    expect(maxAbsDiff(r.output.data, ref.outputs.logits.data)).toBeLessThan(1e-4);
    expect(maxAbsDiff(r[name]!.data, ref.intermediates[name].data)).toBeLessThan(1e-4);
    expect(b.info.classifierWeight!.shape).toEqual([10, 32]);
    const plain = await OnnxBackbone.load({ path: fixture('digits-cnn.onnx'), classifierWeight: 'fc2.weight' });
    expect(maxAbsDiff(b.info.classifierWeight!.data, plain.info.classifierWeight!.data)).toBe(0);
    const info = await inspectModel(path);
    expect(info.runError).toBeUndefined();
    expect(info.intermediates.find((t) => t.name === name)!.shape).toEqual(['batch', 32, 4, 4]);
    expect([hashBytes(readFileSync(path)), hashBytes(readFileSync(join(dir, 'weights.bin')))]).toEqual(before);
    await b.dispose();
    await plain.dispose();
  });
});
