/**
 * SOP cost benchmark (run by `pnpm bench`, or `npx tsx packages/core/bench/sop.ts`).
 *
 * For each setup — the two bundled ONNX models through `@sop/backbone-onnx`'s OnnxBackbone (shapes-vit: 16×16 images,
 * 4×4 patches, d = 16; digits-cnn: 8×8 digits, 2×2 patches, d = 16; both with the example configs' groups 16 /
 * keep 0.25) and a frozen in-core MLP:
 *
 * 1. Inference on a batch: time of one SOP prediction ÷ time of the backbone calls SOP makes (the B·m masked rows,
 *    same chunks), measured in one run with the repetitions interleaved (the order alternates); the ratio is the
 *    median of the per-repetition ratios (each pair runs back to back, so it sees the same machine load), the times
 *    are medians. The replayed inputs are copies taken in one untimed prediction first (SOP masks into one reused
 *    buffer; predict is deterministic, so each repetition makes exactly these calls).
 *    `inferenceOverCallsInside` divides by the time the same calls took inside the prediction instead (they run
 *    slower there than replayed back to back; the gap between the two ratios is that slowdown).
 *    `headsShare` = inference / backbone − 1 is the cost of the group generator, the masking and the selector relative
 *    to the m backbone passes (the reference's cost model is "1 projection + m backbone forwards").
 *    `inferenceOverBackboneBlocks`: the same ratio from blocks of 5 predictions against blocks of 5 replays (steady
 *    state, as when a data set is explained batch after batch; the single pairs leave each prediction's caches to the
 *    replay before it). `inferenceOverBackbone` stays the headline figure (the more conservative one here).
 * 2. Per example (batch 1): SOP inference ÷ the m + 1 backbone forwards a prediction needs (its m masked copies in one
 *    call, plus one plain forward of the example).
 * 3. One training step (the configs' batch 16), split into backbone (frozen forwards on the masked rows), heads
 *    (generator + selector forward and backward, masking, loss) and optimizer (AdamW step).
 *
 * Before measuring, each setup runs prediction/replay pairs for SOP_BENCH_WARMUP_MS (default 2000 ms; a quarter of it
 * again before the batch-1 part), so the medians are of steady-state code, not of V8's first tiers.
 *
 * Environment: SOP_BENCH_REPS (repetitions, default 41), SOP_BENCH_ONLY (comma-separated setup names: shapes-vit,
 * digits-cnn, mlp), SOP_BENCH_WARMUP_MS. Results and their history: docs/results/sop-bench.md.
 */
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { MlpBackbone } from '../src/models/mlp.js';
import { SopModel } from '../src/models/sop.js';
import { crossEntropy } from '../src/autograd/index.js';
import { AdamW } from '../src/optim/index.js';
import { Rng } from '../src/rng.js';
import { PatchesSpace } from '../src/features/patches.js';
import { ColumnsSpace } from '../src/features/columns.js';
import { zeroMasker } from '../src/maskers/zero.js';
import { loadBuiltinTable } from '../src/data/builtin.js';
import type { Backbone, BackboneOutputs, ForwardOptions } from '../src/backbone.js';
import type { FeatureSpace } from '../src/feature-space.js';
import type { Inputs } from '../src/inputs.js';
// core must not depend on @sop/backbone-onnx; the benchmark reaches it by path
import { OnnxBackbone } from '../../backbone-onnx/src/index.js';
import { HfBackbone, backboneHfModule } from '../../backbone-hf/src/index.js';
import { createContainer } from '../src/di/container.js';
import { coreModule } from '../src/module.js';
import { buildPipeline, loadConfig } from '../src/config/index.js';
import { takeRows } from '../src/tensor.js';
import type { Masker } from '../src/masker.js';
import { readNpy } from '../src/data/npy.js';

const FIXTURES = fileURLToPath(new URL('../../../fixtures/onnx/', import.meta.url));

interface Timed extends Backbone {
  ms: number;
  calls: number;
  /** When set, forward calls keep a copy of their inputs (SOP reuses one buffer for the masked rows of every chunk). */
  capture: boolean;
  captured: Array<[Inputs, ForwardOptions | undefined]>;
  /** The outputs of the captured calls, in order (copies). */
  capturedOutputs: BackboneOutputs[];
  /** When set, forward calls return the captured outputs in turn instead of running the backbone (see headsWarm). */
  stub: boolean;
  stubNext: number;
  inner: Backbone;
}

/** Wraps a backbone: accumulates the time spent in its forward calls; keeps copies of their inputs for replay when capturing. */
function timed(b: Backbone): Timed {
  const w: Timed = {
    name: b.name,
    info: b.info,
    capabilities: b.capabilities,
    inner: b,
    ms: 0,
    calls: 0,
    capture: false,
    captured: [],
    capturedOutputs: [],
    stub: false,
    stubNext: 0,
    async forward(inputs: Inputs, o?: ForwardOptions): Promise<BackboneOutputs> {
      if (w.stub) return replayOutputs(w.capturedOutputs[w.stubNext++ % w.capturedOutputs.length], o);
      const t = performance.now();
      const out = await b.forward(inputs, o);
      w.ms += performance.now() - t;
      w.calls++;
      if (w.capture) {
        w.captured.push([copyInputs(inputs), o]);
        const copy = (t?: { data: Float32Array; shape: number[] }) => t && { data: t.data.slice(), shape: [...t.shape] };
        w.capturedOutputs.push({ output: copy(out.output)!, hidden: copy(out.hidden), embeddings: copy(out.embeddings) });
      }
      return out;
    },
  };
  return w;
}

/** A recorded backbone result, written into the caller's `into` buffers as a backbone that honours them does. */
function replayOutputs(r: BackboneOutputs, o?: ForwardOptions): BackboneOutputs {
  const out: BackboneOutputs = { ...r };
  if (o?.into?.output && o.into.output.length === r.output.data.length) out.output = { data: o.into.output.set(r.output.data) ?? o.into.output, shape: r.output.shape };
  if (r.hidden && o?.into?.hidden && o.into.hidden.length === r.hidden.data.length) out.hidden = { data: o.into.hidden.set(r.hidden.data) ?? o.into.hidden, shape: r.hidden.shape };
  return out;
}

function copyInputs(inputs: Inputs): Inputs {
  const out: Inputs = { ...inputs };
  for (const [k, v] of Object.entries(inputs)) (out as Record<string, unknown>)[k] = { data: v.data.slice(), shape: [...v.shape] };
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
const r2 = (x: number): number => +x.toFixed(2);
const r3 = (x: number): number => +x.toFixed(3);

interface Setup {
  name: string;
  description: string;
  backbone: Backbone;
  space: FeatureSpace;
  /** The rows to take batches from (x and any auxiliary inputs, e.g. attention_mask). */
  inputs: Inputs;
  /** Default: zero. */
  masker?: Masker;
  numOutputs: number;
  groups: number;
  keep: number;
  maskBatchSize?: number;
  embedDim?: number;
  embeddings?: 'projection' | 'backbone';
}

function rows(s: Setup, start: number, n: number): Inputs {
  const idx = Array.from({ length: n }, (_, i) => start + i);
  return Object.fromEntries(Object.entries(s.inputs).map(([k, v]) => [k, takeRows(v, idx)])) as Inputs;
}

async function measure(s: Setup, o: { batch: number; trainBatch: number; reps: number; warmup: number; warmupMs: number }): Promise<Record<string, unknown>> {
  const bb = timed(s.backbone);
  const inputs = rows(s, 0, o.batch);
  const sop = new SopModel({ backbone: bb, space: s.space, masker: s.masker ?? zeroMasker, task: 'classification', numOutputs: s.numOutputs }, inputs, {
    groups: s.groups,
    keep: s.keep,
    maskBatchSize: s.maskBatchSize,
    embedDim: s.embedDim,
    embeddings: s.embeddings,
    seed: 0,
  });
  const m = sop.numGroups;

  // 1. batch inference vs the same backbone calls alone (interleaved, alternating order)
  const replay = async (calls: Timed['captured']): Promise<number> => {
    const t = performance.now();
    for (const [inp, opt] of calls) await s.backbone.forward(inp, opt);
    return performance.now() - t;
  };
  const sopRun = async (inp: Inputs): Promise<{ ms: number; inCalls: number }> => {
    bb.ms = 0;
    bb.calls = 0;
    const t = performance.now();
    await sop.predict(inp);
    return { ms: performance.now() - t, inCalls: bb.ms };
  };
  // the backbone calls of one prediction (copies of its masked rows; predict is deterministic, so every repetition
  // makes exactly these calls), captured outside the timed runs
  const capture = async (inp: Inputs): Promise<Timed['captured']> => {
    bb.captured = [];
    bb.capturedOutputs = [];
    bb.capture = true;
    await sop.predict(inp);
    bb.capture = false;
    return bb.captured;
  };
  const calls = await capture(inputs);
  const callOutputs = bb.capturedOutputs;
  // steady state: run both sides until the JIT has settled (a few prediction-replay pairs are not enough for V8 to
  // optimise the heads' code; unwarmed medians then measure the interpreter, not SOP)
  for (const t0 = performance.now(); performance.now() - t0 < o.warmupMs; ) {
    await sopRun(inputs);
    await replay(calls);
  }
  const inferMs: number[] = [];
  const aloneMs: number[] = [];
  const inCallsMs: number[] = [];
  for (let r = 0; r < o.reps + o.warmup; r++) {
    let a: { ms: number; inCalls: number };
    let b: number;
    if (r % 2 === 0) {
      a = await sopRun(inputs);
      b = await replay(calls);
    } else {
      b = await replay(calls);
      a = await sopRun(inputs);
    }
    if (r >= o.warmup) {
      inferMs.push(a.ms);
      aloneMs.push(b);
      inCallsMs.push(a.inCalls);
    }
  }
  const callsPerPrediction = calls.length;
  // 1b. the same, timed in blocks: `block` predictions back to back against the same number of replays (alternating
  // which block runs first), as a user explaining a data set batch after batch runs them; the single interleaved pairs
  // above leave each prediction's caches to the replay before it
  const block = 5;
  const blockRatios: number[] = [];
  for (let r = 0; r < Math.max(6, Math.ceil(o.reps / 2)); r++) {
    const timeBlock = async (f: () => Promise<unknown>): Promise<number> => {
      const t = performance.now();
      for (let i = 0; i < block; i++) await f();
      return performance.now() - t;
    };
    let a: number;
    let b: number;
    if (r % 2 === 0) {
      a = await timeBlock(() => sop.predict(inputs));
      b = await timeBlock(() => replay(calls));
    } else {
      b = await timeBlock(() => replay(calls));
      a = await timeBlock(() => sop.predict(inputs));
    }
    blockRatios.push(a / b);
  }

  // 1c. the heads alone and warm: the same prediction with its backbone calls answered from memory (their recorded
  // outputs, so no backbone work evicts the heads' code and data between their steps), against the heads' time inside
  // a real prediction (inference − its calls)
  bb.stub = true;
  bb.capturedOutputs = callOutputs;
  const warmMs: number[] = [];
  for (let r = 0; r < o.reps * 4 + 20; r++) {
    bb.stubNext = 0;
    const t = performance.now();
    await sop.predict(inputs);
    if (r >= 20) warmMs.push(performance.now() - t);
  }
  bb.stub = false;

  // 2. one example: SOP vs its m masked copies (one call) + one plain forward
  const one = rows(s, 0, 1);
  const oneCalls = await capture(one);
  for (const t0 = performance.now(); performance.now() - t0 < o.warmupMs / 4; ) {
    await sopRun(one);
    await replay(oneCalls);
  }
  const oneSop: number[] = [];
  const oneBb: number[] = [];
  for (let r = 0; r < o.reps * 2 + o.warmup; r++) {
    const forwards = async (): Promise<number> => {
      const t = performance.now();
      await replay(oneCalls);
      await s.backbone.forward(one);
      return performance.now() - t;
    };
    let a: number;
    let b: number;
    if (r % 2 === 0) {
      a = (await sopRun(one)).ms;
      b = await forwards();
    } else {
      b = await forwards();
      a = (await sopRun(one)).ms;
    }
    if (r >= o.warmup) {
      oneSop.push(a);
      oneBb.push(b);
    }
  }

  // 3. training step split
  const trainInputs = rows(s, 0, o.trainBatch);
  const labels = new Int32Array(o.trainBatch).map((_, i) => i % s.numOutputs);
  const opt = new AdamW(Object.values(sop.parameterTensors()), { lr: 1e-3 });
  const split = { backbone: [] as number[], heads: [] as number[], optimizer: [] as number[], total: [] as number[] };
  for (let r = 0; r < o.reps + o.warmup; r++) {
    bb.ms = 0;
    bb.captured = [];
    opt.zeroGrad();
    const t0 = performance.now();
    const out = await sop.forward(trainInputs, { grad: true, head: 0 });
    const loss = crossEntropy(out.output, labels);
    loss.backward();
    const t1 = performance.now();
    opt.step();
    const t2 = performance.now();
    if (r >= o.warmup) {
      split.backbone.push(bb.ms);
      split.heads.push(t1 - t0 - bb.ms);
      split.optimizer.push(t2 - t1);
      split.total.push(t2 - t0);
    }
  }
  const inf = median(inferMs);
  const alone = median(aloneMs);
  const oS = median(oneSop);
  const oB = median(oneBb);
  return {
    setup: `${s.description}; batch ${o.batch}, m = ${m} groups, keep ${s.keep}, maskBatchSize ${sop.maskBatchSize}, selector keys: ${sop.keys}`,
    backboneCallsPerPrediction: callsPerPrediction,
    maskedRowsPerPrediction: o.batch * m,
    inferenceMs: r2(inf),
    backboneCallsAloneMs: r2(alone),
    inferenceOverBackbone: r3(median(inferMs.map((v, i) => v / aloneMs[i]))),
    headsShare: r3(median(inferMs.map((v, i) => v / aloneMs[i])) - 1),
    // steady state: blocks of 5 predictions against blocks of 5 replays (median of the block ratios)
    inferenceOverBackboneBlocks: r3(median(blockRatios)),
    // the same prediction against the time its backbone calls took inside it (they run slower there than replayed
    // back to back: the difference is the cost SOP's work between the calls imposes on the backbone)
    backboneCallsInsideMs: r2(median(inCallsMs)),
    inferenceOverCallsInside: r3(median(inferMs.map((v, i) => v / inCallsMs[i]))),
    // the heads' time inside a prediction (inference − its backbone calls) and alone with warm caches (the calls
    // answered from memory): their ratio is what the backbone's work between the heads' steps costs them
    headsInsideMs: r3(median(inferMs.map((v, i) => v - inCallsMs[i]))),
    headsWarmMs: r3(median(warmMs)),
    perExample: {
      inferenceMs: r3(oS),
      backboneForwardsMs: r3(oB),
      inferenceOverForwards: r3(median(oneSop.map((v, i) => v / oneBb[i]))),
      note: `batch 1: SOP predict vs its ${m} masked copies (one call) + 1 plain forward`,
    },
    train: {
      batch: o.trainBatch,
      stepMs: r2(median(split.total)),
      backboneMs: r2(median(split.backbone)),
      headsMs: r2(median(split.heads)),
      optimizerMs: r3(median(split.optimizer)),
    },
    repetitions: o.reps,
  };
}

async function onnxSetups(): Promise<Setup[]> {
  const vit = await OnnxBackbone.load({ path: `${FIXTURES}shapes-vit.onnx`, output: 'logits', hidden: 'hidden' });
  const shapesX = readNpy(`${FIXTURES}shapes-test-x.npy`);
  const cnn = await OnnxBackbone.load({ path: `${FIXTURES}digits-cnn.onnx`, output: 'logits', hidden: 'hidden' });
  const digits = loadBuiltinTable('digits', { split: 0.25, seed: 0 });
  const dx = Float32Array.from(digits.test.inputs.x.data as Float32Array, (v) => v * 0.0625);
  return [
    {
      name: 'shapes-vit',
      description: 'fixtures/onnx/shapes-vit.onnx (OnnxBackbone), 16×16 images, 4×4 patches (d = 16), examples/shapes-vit-sop.yaml',
      backbone: vit,
      space: new PatchesSpace([1, 16, 16], [4, 4]),
      inputs: { x: { data: Float32Array.from(shapesX.values!), shape: [shapesX.shape[0], 1, 16, 16] } },
      numOutputs: 4,
      groups: 16,
      keep: 0.25,
    },
    {
      name: 'digits-cnn',
      description: 'fixtures/onnx/digits-cnn.onnx (OnnxBackbone), 8×8 digits, 2×2 patches (d = 16), examples/digits-cnn-sop.yaml',
      backbone: cnn,
      space: new PatchesSpace([1, 8, 8], [2, 2]),
      inputs: { x: { data: dx, shape: [dx.length / 64, 1, 8, 8] } },
      numOutputs: 10,
      groups: 16,
      keep: 0.25,
    },
  ];
}

/** The bundled tiny BERT (transformers.js) as examples/text-hf-sop.yaml builds it: tokens, attention masker, backbone embeddings. */
async function tinyBertSetup(): Promise<Setup> {
  const config = fileURLToPath(new URL('../../../examples/text-hf-sop.yaml', import.meta.url));
  const container = await createContainer([coreModule, backboneHfModule]);
  const pipeline = await buildPipeline(container, loadConfig(config));
  const model = pipeline.config.model as unknown as { groups: number; keep: number };
  return {
    name: 'tiny-bert',
    description: 'fixtures/hf/tiny-bert (transformers.js, HfBackbone), 16 tokens, attention masker, backbone embeddings, examples/text-hf-sop.yaml',
    backbone: pipeline.backbone,
    space: pipeline.space,
    masker: pipeline.masker,
    inputs: pipeline.dataset.test.inputs,
    numOutputs: pipeline.dataset.numOutputs,
    groups: model.groups,
    keep: model.keep,
    embeddings: 'backbone',
  };
}

/** The bundled transformers.js tiny ViT (32×32 RGB, its own 8×8 patches as the features) on random pixel values, SOP's default projection embeddings. */
async function tinyVitSetup(): Promise<Setup> {
  const dir = fileURLToPath(new URL('../../../fixtures/hf/tiny-vit', import.meta.url));
  const backbone = await HfBackbone.load({ use: 'hf', path: dir, baseDir: '/', hidden: 'encoder_output' });
  const rng = new Rng(3);
  const x = Float32Array.from({ length: 64 * 3 * 32 * 32 }, () => rng.next() * 2 - 1);
  return {
    name: 'tiny-vit',
    description: 'fixtures/hf/tiny-vit (transformers.js, HfBackbone), 32×32 RGB, its own 8×8-pixel patches (d = 16), random pixels',
    backbone,
    space: new PatchesSpace([3, 32, 32], [8, 8]),
    inputs: { x: { data: x, shape: [64, 3, 32, 32] } },
    numOutputs: 3,
    groups: 16,
    keep: 0.25,
  };
}

function mlpSetup(): Setup {
  const d = 64;
  const C = 10;
  const hidden = [256, 256];
  const rng = new Rng(0);
  const x = new Float32Array(64 * d);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const mlp = new MlpBackbone({ inputDim: d, outputDim: C, hidden, seed: 1 });
  mlp.setTrainable(false);
  return {
    name: 'mlp',
    description: `frozen MLP ${d}→${hidden.join('→')}→${C} (in-core), columns, projection embeddings (32-d)`,
    backbone: mlp,
    space: new ColumnsSpace([d]),
    inputs: { x: { data: x, shape: [64, d] } },
    numOutputs: C,
    groups: 20,
    keep: 0.2,
    maskBatchSize: 64,
    embedDim: 32,
  };
}

export async function run(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const reps = Number(process.env.SOP_BENCH_REPS ?? 41);
  const only = process.env.SOP_BENCH_ONLY?.split(',');
  const warmupMs = Number(process.env.SOP_BENCH_WARMUP_MS ?? 2000);
  // the in-core MLP first, before any onnxruntime session exists: in full runs after the ONNX and transformers.js
  // setups its calls sometimes ran at half speed on one side of the comparison only (either side, varying by run)
  const setups = [mlpSetup(), ...(await onnxSetups()), await tinyBertSetup(), await tinyVitSetup()].filter((s) => !only || only.includes(s.name));
  for (const s of setups) {
    out[s.name] = await measure(s, { batch: 32, trainBatch: 16, reps, warmup: 3, warmupMs });
    await s.backbone.dispose?.();
  }
  out.summary = Object.fromEntries(setups.map((s) => [s.name, (out[s.name] as { inferenceOverBackbone: number }).inferenceOverBackbone]));
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  run().then((r) => console.log(JSON.stringify(r, null, 2)));
}
