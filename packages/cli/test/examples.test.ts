import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildPipeline, loadConfig } from '@sop/core';
import { buildContainer } from '@sop/cli';

const examples = resolve(__dirname, '../../../examples');
const configs = readdirSync(examples).filter((f) => f.endsWith('.yaml'));

describe('example configs', () => {
  it('there are example configs', () => expect(configs.length).toBeGreaterThanOrEqual(5));
  for (const file of configs) {
    it(`${file} validates and builds its whole pipeline (data, backbone, features, masker)`, async () => {
      const loaded = loadConfig(join(examples, file));
      const pipeline = await buildPipeline(await buildContainer(), loaded);
      const n = Math.min(4, pipeline.dataset.test.inputs.x.shape[0]);
      expect(pipeline.space.numFeatures).toBeGreaterThan(0);
      expect(pipeline.dataset.numOutputs).toBeGreaterThan(1);
      // the backbone runs on the configured data, with one output per class
      if (pipeline.config.backbone.use !== 'mlp') {
        const rows = Object.fromEntries(Object.entries(pipeline.dataset.test.inputs).map(([k, v]) => [k, { data: v.data.subarray(0, n * (v.data.length / v.shape[0])), shape: [n, ...v.shape.slice(1)] }]));
        const out = await pipeline.backbone.forward(rows as never);
        expect(out.output.shape).toEqual([n, pipeline.dataset.numOutputs]);
      }
    });
  }
});
