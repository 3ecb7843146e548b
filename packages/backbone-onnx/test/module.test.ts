/** The DI module binds the 'onnx' backbone; the factory resolves paths from baseDir. */
import { describe, expect, it } from 'vitest';
import { createContainer, listPlugins, resolvePlugin } from '@sop/core';
import type { BackboneFactory } from '@sop/core';
import { backboneOnnxModule } from '../src/index.js';
import { FIXTURES } from './helpers.js';

describe('backboneOnnxModule', () => {
  it("registers backbone 'onnx' and creates a working backbone from config", async () => {
    const c = await createContainer([backboneOnnxModule]);
    expect(listPlugins(c).backbone).toContain('onnx');
    const f = resolvePlugin<BackboneFactory>(c, 'backbone', 'onnx');
    const b = await f.create(
      { use: 'onnx', baseDir: FIXTURES, path: 'tabular-mlp.onnx', hidden: 'hidden', classifierWeight: 'out.weight', maxBatch: 16 },
      { seed: 0 },
    );
    expect(b.info).toMatchObject({ outputDim: 2, hiddenDim: 16, inputShape: [30] });
    expect(b.info.classifierWeight!.shape).toEqual([2, 16]);
    const r = await b.forward({ x: { data: new Float32Array(40 * 30), shape: [40, 30] } }, { outputs: ['hidden'] });
    expect(r.output.shape).toEqual([40, 2]);
    expect(r.hidden!.shape).toEqual([40, 16]);
    await b.dispose?.();
  });
});
