import { describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { npyLoader, readNpy } from '../src/data/npy.js';

const dir = resolve(__dirname, '../../../fixtures/onnx');

describe('npy loader: ground-truth masks follow their rows through the split', () => {
  it('each split row keeps the mask of the same source row', async () => {
    const d = await npyLoader.load({ use: 'npy', baseDir: dir, seed: 0, x: 'shapes-train-x.npy', y: 'shapes-train-y.npy', masks: 'shapes-train-masks.npy', split: 0.25 });
    const x = readNpy(resolve(dir, 'shapes-train-x.npy')).values!;
    const m = readNpy(resolve(dir, 'shapes-train-masks.npy')).values!;
    expect(d.train.inputMasks!.shape).toEqual([900, 16, 16]);
    expect(d.test.inputMasks!.shape).toEqual([300, 16, 16]);
    // find each test row's source row by its pixels, and compare the masks
    for (let i = 0; i < 5; i++) {
      const row = (d.test.inputs.x.data as Float32Array).subarray(i * 256, (i + 1) * 256);
      let src = -1;
      for (let r = 0; r < 1200 && src < 0; r++) {
        let same = true;
        for (let j = 0; j < 256 && same; j++) same = Math.fround(x[r * 256 + j]) === row[j];
        if (same) src = r;
      }
      expect(src).toBeGreaterThanOrEqual(0);
      expect(Array.from(d.test.inputMasks!.data.subarray(i * 256, (i + 1) * 256))).toEqual(Array.from(m.subarray(src * 256, (src + 1) * 256)));
    }
  });
});
