/**
 * ScoresActivation in front of a frozen ONNX backbone (fixtures/onnx/tabular-mlp.onnx, a PyTorch export trained on
 * z-scored breast-cancer data): ∂L/∂s against finite differences and the closed form, training through the
 * pipeline (rankings per epoch, loss going down), fine-tuning an initializer (saved and loaded back), and the
 * error for a backbone without gradients. (backbone-onnx is not a dependency of core; imported by path.)
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OnnxBackbone } from '../../backbone-onnx/src/index.js';
import { Tensor, crossEntropy, noGrad } from '../src/autograd/index.js';
import { loadBuiltinTable } from '../src/data/builtin.js';
import { ScoresActivation, ScoresActivationBackboneModel } from '../src/models/index.js';
import { loadTrainedModel, trainPipeline } from '../src/train/index.js';
import { loadStageWeights } from '../src/train/trainer.js';
import { Rng } from '../src/rng.js';
import { UserError } from '../src/errors.js';
import type { Pipeline } from '../src/config/pipeline.js';
import type { SopConfig } from '../src/config/types.js';
import type { Dataset } from '../src/dataset.js';
import type { FeatureSpace } from '../src/feature-space.js';
import { ColumnsSpace } from '../src/features/columns.js';
import type { Masker } from '../src/masker.js';
import type { TrainingEvent } from '../src/events.js';
import type { Inputs } from '../src/inputs.js';

const FIX = resolve(import.meta.dirname, '../../../fixtures/onnx');
const tmp = (): string => mkdtempSync(join(tmpdir(), 'sop-scores-onnx-'));
const cacheDir = tmp();

/** breast-cancer z-scored with the statistics the fixture was trained with (tabular-mlp.json). */
function data(): Dataset {
  const meta = JSON.parse(readFileSync(join(FIX, 'tabular-mlp.json'), 'utf8')) as { mean: number[]; std: number[] };
  const ds = loadBuiltinTable('breast-cancer', { split: 0.2, seed: 0 });
  for (const split of [ds.train, ds.test]) {
    const x = split.inputs.x.data as Float32Array;
    for (let i = 0; i < x.length; i++) x[i] = (x[i] - meta.mean[i % 30]) / meta.std[i % 30];
  }
  return ds;
}

// the real columns space
const columns = (d: number): FeatureSpace => new ColumnsSpace([d]);
const noMasker: Masker = { name: 'none', apply: (inputs) => inputs };

function pipeline(dataset: Dataset, backbone: Pipeline['backbone'], model: SopConfig['model'], backboneBlock: Record<string, unknown> = {}, train: Partial<SopConfig['train']> = {}): Pipeline {
  const config: SopConfig = {
    name: 'test',
    task: 'classification',
    plugins: [],
    data: { use: 'builtin' },
    features: { use: 'columns' },
    backbone: { use: 'onnx', path: join(FIX, 'tabular-mlp.onnx'), ...backboneBlock },
    model,
    train: { batchSize: 32, lr: 0.05, seed: 0, epochs: 3, weightDecay: 0, ...train },
  };
  return { config, baseDir: '.', rng: new Rng(0), dataset, space: columns(30), masker: noMasker, backbone };
}

function rows(ds: Dataset, n: number, from = 0): { inputs: Inputs; labels: Float32Array } {
  const x = ds.train.inputs.x;
  return {
    inputs: { x: { data: (x.data as Float32Array).slice(from * 30, (from + n) * 30), shape: [n, 30] } },
    labels: ds.train.labels.slice(from, from + n),
  };
}

describe('ScoresActivation over a frozen ONNX backbone', () => {
  it('∂L/∂s matches central differences and the closed form w ⊙ (g − ⟨g,w⟩)/T; fine-tuned weight gradients too', async () => {
    const ds = data();
    const bb = await OnnxBackbone.load({ path: join(FIX, 'tabular-mlp.onnx'), cacheDir, maxBatch: 3 });
    const { inputs, labels } = rows(ds, 5, 17);
    const T = 0.7;
    const layer = new ScoresActivation(30, { temperature: T, scaleByD: true });
    const rng = new Rng(3);
    for (let i = 0; i < 30; i++) layer.s.data[i] = 2 * rng.next() - 1;
    const head = bb.parameters()['out.bias'];
    const model = new ScoresActivationBackboneModel(layer, bb, [30], { 'out.bias': { data: head.data.map((v, i) => v + 0.3 * (i - 0.5)), shape: head.shape } });
    // flipped labels: the backbone is confident and right, so its own labels give a vanishing loss and gradient
    const lossOf = (o: Tensor) => crossEntropy(o, Int32Array.from(labels, (v) => 1 - v));
    const loss = await model.lossTensor(inputs, lossOf);
    loss.backward();
    const gs = Float32Array.from(layer.s.grad!);
    const gb = Float32Array.from(model.finetuned['out.bias'].grad!);
    const value = () => lossValue(model, inputs, lossOf);
    expect(Math.abs((await value()) - loss.item())).toBeLessThan(1e-5);
    const eps = 1e-2;
    const scaleG = Math.max(...gs.map(Math.abs));
    expect(scaleG).toBeGreaterThan(1e-4);
    for (let i = 0; i < 30; i++) {
      const s0 = layer.s.data[i];
      layer.s.data[i] = s0 + eps;
      const up = await value();
      layer.s.data[i] = s0 - eps;
      const down = await value();
      layer.s.data[i] = s0;
      expect(Math.abs((up - down) / (2 * eps) - gs[i])).toBeLessThan(2e-3 * scaleG + 1e-5);
    }
    for (let k = 0; k < 2; k++) {
      const p = model.finetuned['out.bias'].data;
      const b0 = p[k];
      p[k] = b0 + eps;
      const up = await value();
      p[k] = b0 - eps;
      const down = await value();
      p[k] = b0;
      expect((up - down) / (2 * eps)).toBeCloseTo(gb[k], 3);
    }
    // closed form (scaleByD: w = d·softmax(s/T)): with g_i = Σ_b x_bi ∂L/∂y_bi, ∂L/∂s = d·σ ⊙ (g − ⟨g, d·σ⟩ / d)/T
    const w = layer.weights();
    const xw = model.weighted(inputs, w);
    const y = (await bb.vjp(xw, { cotangents: { output: { data: new Float32Array(10), shape: [5, 2] } }, wrt: ['out.bias'], params: model.params() })).outputs.output;
    const yT = new Tensor(Float32Array.from(y.data), [5, 2], true);
    lossOf(yT).backward();
    const gy = (await bb.vjp(xw, { cotangents: { output: { data: yT.grad!, shape: [5, 2] } }, wrt: ['x'], params: model.params() })).grads.x.data;
    const g = new Float64Array(30);
    const x = inputs.x.data as Float32Array;
    for (let i = 0; i < x.length; i++) g[i % 30] += x[i] * gy[i];
    let dot = 0;
    for (let i = 0; i < 30; i++) dot += (g[i] * w[i]) / 30;
    for (let i = 0; i < 30; i++) expect(gs[i]).toBeCloseTo((w[i] * (g[i] - dot)) / T, 5);
    await bb.dispose();
  });

  it('trains through the pipeline (ranking each epoch, loss down); fine-tuning out.bias changes it, lowers the loss, is saved and loaded back', async () => {
    const ds = data();
    const bb = await OnnxBackbone.load({ path: join(FIX, 'tabular-mlp.onnx'), cacheDir });
    const train = { epochs: 4, batchSize: 64, lr: 0.1 };
    const events: TrainingEvent[] = [];
    const out = tmp();
    const plain = await trainPipeline(pipeline(ds, bb, { use: 'scores-activation' }, {}, train), { outDir: join(out, 'plain'), listener: (e) => events.push(e) });
    const epochs = events.filter((e) => e.type === 'epoch') as Array<{ loss: number }>;
    expect(events.filter((e) => e.type === 'ranking')).toHaveLength(4);
    expect(epochs).toHaveLength(4);
    expect(epochs[3].loss).toBeLessThan(epochs[0].loss);
    expect(plain.ranking).toHaveLength(30);
    expect(plain.metrics.accuracy).toBeGreaterThan(0.9);
    const s = loadStageWeights(join(out, 'plain'), 'scores-activation')['scores.s'].data;
    expect(Math.max(...s) - Math.min(...s)).toBeGreaterThan(1e-3);

    const ftEvents: TrainingEvent[] = [];
    const ft = await trainPipeline(pipeline(ds, bb, { use: 'scores-activation' }, { finetune: ['out.bias'] }, train), { outDir: join(out, 'ft'), listener: (e) => ftEvents.push(e) });
    const ftEpochs = ftEvents.filter((e) => e.type === 'epoch') as Array<{ loss: number }>;
    expect(ftEpochs[3].loss).toBeLessThan(ftEpochs[0].loss);
    expect(ftEpochs[3].loss).toBeLessThan(epochs[3].loss);
    const saved = loadStageWeights(join(out, 'ft'), 'scores-activation')['backbone.out.bias'];
    const stored = bb.parameters()['out.bias'];
    expect(saved.shape).toEqual([2]);
    expect(Math.abs(saved.data[0] - stored.data[0]) + Math.abs(saved.data[1] - stored.data[1])).toBeGreaterThan(1e-3);
    // loaded back: the same predictions as the trained model, which differ from the stored weights' ones
    const loaded = await loadTrainedModel(join(out, 'ft'), pipeline(ds, bb, { use: 'scores-activation' }, { finetune: ['out.bias'] }));
    const test = { x: ds.test.inputs.x };
    const a = await loaded.predict(test);
    expect(loaded.ranking!()).toEqual(ft.ranking);
    const frozen = new ScoresActivationBackboneModel(loaded.scores!, bb, [30]);
    const b = await frozen.predict(test);
    let diff = 0;
    for (let i = 0; i < a.data.length; i++) diff = Math.max(diff, Math.abs(a.data[i] - b.data[i]));
    expect(diff).toBeGreaterThan(1e-3);
    await bb.dispose();
  });

  it('a backbone without vjp is a UserError naming the fix', async () => {
    const ds = data();
    const bb = { name: 'blackbox', info: { outputDim: 2 }, capabilities: { vjp: false, hidden: false, embeddings: false }, forward: async () => ({ output: { data: new Float32Array(0), shape: [0, 2] } }) };
    const p = pipeline(ds, bb, { use: 'scores-activation' });
    await expect(trainPipeline(p, { outDir: join(tmp(), 'r') })).rejects.toThrow(UserError);
    await expect(trainPipeline(p, { outDir: join(tmp(), 'r') })).rejects.toThrow(/gradients|vjp/);
    expect(() => new ScoresActivationBackboneModel(new ScoresActivation(30), bb, [30])).toThrow(/vjp/);
  });
});

/** The loss of the model's prediction (no graph). */
async function lossValue(model: ScoresActivationBackboneModel, inputs: Inputs, lossOf: (o: Tensor) => Tensor): Promise<number> {
  const y = await model.predict(inputs);
  return noGrad(() => lossOf(new Tensor(y.data, [...y.shape])).item());
}
