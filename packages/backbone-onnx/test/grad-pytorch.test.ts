/**
 * Gradient models built from real PyTorch exports (opset 13 and 17) against PyTorch autograd (float64) references:
 * VJPs w.r.t. float inputs and several weights agree within 1e-4 relative (norm-wise).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { TensorData } from '@sop/core';
import { type OnnxVjp, createVjp } from '../src/grad/index.js';
import { gradFixtures, relErr, tempCache } from '../src/grad/testing.js';

interface Ref {
  output: string;
  inputs: string[];
  cases: {
    feeds: Record<string, { dtype: string; shape: number[]; data: number[] }>;
    cotangent: { shape: number[]; data: number[] };
    output: { shape: number[]; data: number[] };
    grads: Record<string, { shape: number[]; data: number[] }>;
  }[];
}

const cache = tempCache();
const vjps: OnnxVjp[] = [];
afterAll(async () => {
  for (const v of vjps) await v.dispose();
});

function feedsOf(c: Ref['cases'][number]): Record<string, TensorData> {
  const out: Record<string, TensorData> = {};
  for (const [k, v] of Object.entries(c.feeds)) {
    out[k] = {
      data: v.dtype === 'int64' ? BigInt64Array.from(v.data.map((n) => BigInt(n))) : Float32Array.from(v.data),
      shape: v.shape,
    };
  }
  return out;
}

for (const name of ['mlp', 'cnn', 'transformer']) {
  describe(`${name} vs PyTorch autograd`, () => {
    const ref = JSON.parse(readFileSync(join(gradFixtures, `${name}.json`), 'utf8')) as Ref;
    for (const opset of [13, 17]) {
      it(`opset ${opset}: outputs and VJPs w.r.t. inputs and weights`, async () => {
        const wrtAll = [...new Set(ref.cases.flatMap((c) => Object.keys(c.grads)))];
        const v = await createVjp(join(gradFixtures, `${name}_op${opset}.onnx`), { output: ref.output, wrt: wrtAll, cacheDir: cache, sessionOptions: { intraOpNumThreads: 1 } });
        vjps.push(v);
        for (const c of ref.cases) {
          const wrt = Object.keys(c.grads);
          const res = await v.vjp(feedsOf(c), { data: Float32Array.from(c.cotangent.data), shape: c.cotangent.shape }, wrt);
          expect(relErr(res.outputs[ref.output], c.output.data)).toBeLessThan(1e-5);
          for (const w of wrt) {
            expect(res.grads[w].shape, w).toEqual(c.grads[w].shape);
            const err = relErr(res.grads[w].data, c.grads[w].data);
            expect(err, `${name} op${opset} d/d${w}`).toBeLessThan(1e-4);
          }
        }
      });
    }
  });
}
