/**
 * SOP cost benchmark (run by `pnpm bench`, or `npx tsx packages/core/bench/sop.ts`).
 *
 * 1. Inference: time of one SOP prediction on a batch ÷ time of the backbone calls SOP makes on that batch (the
 *    B·m masked rows, same chunking). The reference's cost model is "1 projection + m backbone forwards", so the
 *    ratio shows the overhead of the generator, masking and selector on top of the m backbone passes.
 * 2. One training step, split into backbone (frozen forwards on the masked rows), heads (generator + selector forward
 *    and backward, loss) and optimizer (AdamW step).
 */
import { performance } from 'node:perf_hooks';
import { MlpBackbone } from '../src/models/mlp.js';
import { SopModel } from '../src/models/sop.js';
import { crossEntropy } from '../src/autograd/index.js';
import { AdamW } from '../src/optim/index.js';
import { Rng } from '../src/rng.js';
import type { Backbone, BackboneOutputs, ForwardOptions } from '../src/backbone.js';
import type { FeatureSpace } from '../src/feature-space.js';
import type { Inputs } from '../src/inputs.js';
import type { Masker } from '../src/masker.js';

function columns(d: number): FeatureSpace {
  return {
    kind: 'columns',
    numFeatures: d,
    grid: [8, d / 8],
    featureNames: () => Array.from({ length: d }, (_, i) => `f${i}`),
    expand: (masks, rows) => ({ data: Float32Array.from(masks), shape: [rows.length, d] }),
    aggregate: (a) => a,
    featureValues: (inputs) => ({ data: inputs.x.data as Float32Array, shape: [inputs.x.shape[0], d, 1] }),
  };
}
const zero: Masker = {
  name: 'zero',
  apply(inputs, masks, rows, space) {
    const d = space.numFeatures;
    const x = inputs.x.data as Float32Array;
    const out = new Float32Array(rows.length * d);
    for (let r = 0; r < rows.length; r++) for (let i = 0; i < d; i++) out[r * d + i] = x[rows[r] * d + i] * masks[r * d + i];
    return { x: { data: out, shape: [rows.length, d] } };
  },
};

function timed(b: MlpBackbone): Backbone & { ms: number; calls: number; captured: Inputs[] } {
  const w = {
    name: b.name,
    info: b.info,
    capabilities: b.capabilities,
    ms: 0,
    calls: 0,
    captured: [] as Inputs[],
    async forward(inputs: Inputs, o?: ForwardOptions): Promise<BackboneOutputs> {
      const t = performance.now();
      const out = await b.forward(inputs, o);
      w.ms += performance.now() - t;
      w.calls++;
      w.captured.push(inputs);
      return out;
    },
  };
  return w;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export async function run(): Promise<Record<string, unknown>> {
  const d = 64;
  const C = 10;
  const B = 32;
  const m = 20;
  const hidden = [256, 256];
  const rng = new Rng(0);
  const x = new Float32Array(B * d);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const inputs: Inputs = { x: { data: x, shape: [B, d] } };
  const labels = new Int32Array(B).map((_, i) => i % C);
  const mlp = new MlpBackbone({ inputDim: d, outputDim: C, hidden, seed: 1 });
  mlp.setTrainable(false);
  const bb = timed(mlp);
  const sop = new SopModel({ backbone: bb, space: columns(d), masker: zero, task: 'classification', numOutputs: C }, inputs, { groups: m, keep: 0.2, embedDim: 32, maskBatchSize: 64, seed: 0 });
  const reps = 15;

  // 1. inference
  const sopMs: number[] = [];
  const bbMs: number[] = [];
  for (let r = 0; r < reps + 2; r++) {
    bb.ms = 0;
    bb.calls = 0;
    bb.captured = [];
    const t = performance.now();
    await sop.predict(inputs);
    const total = performance.now() - t;
    // the same backbone calls alone, on the masked rows SOP built
    const captured = bb.captured;
    const t2 = performance.now();
    for (const c of captured) await mlp.forward(c, { outputs: ['hidden'] });
    const alone = performance.now() - t2;
    if (r >= 2) {
      sopMs.push(total);
      bbMs.push(alone);
    }
  }
  const inferCalls = bb.calls;

  // 2. training step split
  const opt = new AdamW(Object.values(sop.parameterTensors()), { lr: 1e-3 });
  const split = { backbone: [] as number[], heads: [] as number[], optimizer: [] as number[], total: [] as number[] };
  for (let r = 0; r < reps + 2; r++) {
    bb.ms = 0;
    opt.zeroGrad();
    const t0 = performance.now();
    const out = await sop.forward(inputs, { grad: true, head: 0 });
    const loss = crossEntropy(out.output, labels);
    loss.backward();
    const t1 = performance.now();
    opt.step();
    const t2 = performance.now();
    if (r >= 2) {
      split.backbone.push(bb.ms);
      split.heads.push(t1 - t0 - bb.ms);
      split.optimizer.push(t2 - t1);
      split.total.push(t2 - t0);
    }
  }
  const inf = median(sopMs);
  const alone = median(bbMs);
  return {
    setup: `MLP ${d}→${hidden.join('→')}→${C}, batch ${B}, m = ${m} groups, keep 0.2, maskBatchSize 64, projection embeddings (32-d)`,
    backboneCallsPerPrediction: inferCalls,
    maskedRowsPerPrediction: B * m,
    inferenceMs: +inf.toFixed(2),
    backboneCallsAloneMs: +alone.toFixed(2),
    inferenceOverBackbone: +(inf / alone).toFixed(2),
    trainStepMs: +median(split.total).toFixed(2),
    trainStepBackboneMs: +median(split.backbone).toFixed(2),
    trainStepHeadsMs: +median(split.heads).toFixed(2),
    trainStepOptimizerMs: +median(split.optimizer).toFixed(3),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  run().then((r) => console.log(JSON.stringify(r, null, 2)));
}
