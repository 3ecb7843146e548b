/**
 * SOP's group generator and selector are plugins (DI slots 'generator' and 'selector'): a config can name another
 * implementation (`model: {use: sop, generator: NAME}`), registered like any other plugin.
 */
import { describe, expect, it } from 'vitest';
import { ContainerModule } from 'inversify';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import {
  bindPlugin,
  buildPipeline,
  configFromObject,
  coreModule,
  createContainer,
  loadTrainedModel,
  trainPipeline,
  Tensor,
  UserError,
  type GeneratedGroups,
  type GroupGenerator,
  type GroupGeneratorFactory,
} from '../src/index.js';

/** Fixed, non-trainable groups: contiguous blocks of `size` features (a user's prior on which features go together). */
class BlockGenerator implements GroupGenerator {
  readonly name = 'blocks';
  constructor(readonly d: number, readonly size: number) {}
  parameters(): Record<string, Tensor> {
    return {};
  }
  async generate(inputs: { x: { shape: number[] } }, options: { groups: number }): Promise<GeneratedGroups> {
    const B = inputs.x.shape[0];
    const m = options.groups;
    const d = this.d;
    const masks = new Float32Array(B * m * d);
    for (let b = 0; b < B; b++) for (let j = 0; j < m; j++) for (let i = 0; i < this.size; i++) masks[(b * m + j) * d + ((j * this.size + i) % d)] = 1;
    const attention = new Float32Array(masks.length);
    for (let i = 0; i < masks.length; i++) attention[i] = masks[i] / this.size;
    return {
      attention: new Tensor(attention, [B, m, d]),
      masks: new Tensor(masks, [B, m, d]),
      scales: new Tensor(new Float32Array(B * m).fill(1), [B, m]),
      queries: Int32Array.from({ length: m }, (_, j) => j * this.size),
      heads: new Int32Array(m),
    };
  }
}

const blocks: GroupGeneratorFactory = {
  name: 'blocks',
  create: (ctx, options) => new BlockGenerator(ctx.space.numFeatures, Number((options as { blockSize?: number }).blockSize ?? 2)),
};

const config = {
  name: 'product-blocks',
  data: { use: 'builtin', name: 'synthetic-product', n: 400, features: 8 },
  features: { use: 'columns' },
  backbone: { use: 'mlp', hidden: [16] },
  model: { use: 'sop', groups: 4, keep: 0.25, generator: 'blocks', generatorOptions: { blockSize: 2 } },
  train: { epochs: 1, backboneEpochs: 3, batchSize: 32, lr: 0.01, seed: 0 },
};

describe('SOP generator/selector plugins', () => {
  it('lists the built-in generator and selector and trains SOP with a user generator named in the config', async () => {
    const container = await createContainer([coreModule, new ContainerModule((o) => bindPlugin(o, 'generator', 'blocks', blocks, 'test'))]);
    const pipeline = await buildPipeline(container, configFromObject(config, process.cwd()));
    const out = join(mkdtempSync(join(tmpdir(), 'sop-gen-')), 'run');
    const res = await trainPipeline(pipeline, { outDir: out });
    expect(res.metrics.max_abs_sum_error).toBeLessThan(1e-5);
    const trained = await loadTrainedModel(out, pipeline);
    const exp = await trained.explainer!.explain(pipeline.dataset.test.inputs, { keep: 0.25 });
    const g = exp.groups!;
    // every example's groups are exactly the blocks {0,1}, {2,3}, {4,5}, {6,7}
    for (let b = 0; b < 3; b++)
      for (let j = 0; j < 4; j++) {
        const feats: number[] = [];
        for (let i = 0; i < 8; i++) if (g.masks[(b * 4 + j) * 8 + i] > 0) feats.push(i);
        expect(feats).toEqual([2 * j, 2 * j + 1]);
      }
    // only the selector trained: its parameters are in the checkpoint, the generator has none
    expect(Object.keys(trained.sop!.params).every((n) => n.startsWith('selector.'))).toBe(true);
  });

  it('an unknown generator name is a user error listing the registered ones', async () => {
    const container = await createContainer([coreModule]);
    // fails while building the pipeline, before any data is loaded or anything trains
    const build = buildPipeline(container, configFromObject({ ...config, model: { use: 'sop', generator: 'voronoi' } }, process.cwd()));
    await expect(build).rejects.toThrow(UserError);
    await expect(build).rejects.toThrow("model.generator: unknown generator plugin 'voronoi'");
    await expect(build).rejects.toMatchObject({ fix: expect.stringContaining('attention') });
  });
});
