import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MlpBackbone } from '../src/models/index.js';
import { trainPipeline, loadTrainedModel, encodeSafetensors, decodeSafetensors, saveSafetensors, loadSafetensors, LOG_FILE } from '../src/train/index.js';
import { syntheticRelevant, syntheticProduct } from '../src/data/synthetic.js';
import { Rng } from '../src/rng.js';
import type { Pipeline } from '../src/config/pipeline.js';
import type { SopConfig } from '../src/config/types.js';
import type { Dataset } from '../src/dataset.js';
import type { FeatureSpace } from '../src/feature-space.js';
import { ColumnsSpace } from '../src/features/columns.js';
import { zeroMasker } from '../src/maskers/zero.js';
import type { Masker } from '../src/masker.js';
import type { TrainingEvent } from '../src/events.js';

// the real columns space and zero masker
const columns = (d: number): FeatureSpace => new ColumnsSpace([d]);
const zero: Masker = zeroMasker;

function pipeline(dataset: Dataset, model: SopConfig['model'], train: Partial<SopConfig['train']> = {}, hidden = [16], dropout = 0): Pipeline {
  const d = dataset.train.inputs.x.shape[1];
  const seed = train.seed ?? 0;
  const config: SopConfig = {
    name: 'test',
    task: dataset.task,
    plugins: [],
    data: { use: 'builtin' },
    features: { use: 'columns' },
    backbone: { use: 'mlp', hidden },
    model,
    train: { batchSize: 32, lr: 0.01, seed, epochs: 3, ...train },
  };
  const backbone = new MlpBackbone({ inputDim: d, outputDim: dataset.numOutputs, hidden, seed, dropout });
  return { config, baseDir: '.', rng: new Rng(seed), dataset, space: columns(d), masker: zero, backbone };
}

const tmp = (): string => mkdtempSync(join(tmpdir(), 'sop-train-'));

describe('checkpoint format (safetensors)', () => {
  it('round-trips tensors and metadata; header length is 8-byte LE and the header is JSON with data_offsets', () => {
    const tensors = { b: { data: Float32Array.from([1.5, -2, 3e-8]), shape: [3] }, a: { data: Float32Array.from([1, 2, 3, 4, 5, 6]), shape: [2, 3] } };
    const bytes = encodeSafetensors(tensors, { note: 'x' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    expect(header.a).toEqual({ dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
    expect(header.b).toEqual({ dtype: 'F32', shape: [3], data_offsets: [24, 36] });
    expect(header.__metadata__).toEqual({ note: 'x' });
    expect(bytes.length).toBe(8 + n + 36);
    expect(new Float32Array(bytes.slice(8 + n + 24).buffer)[0]).toBe(1.5);
    const back = decodeSafetensors(bytes);
    expect(Array.from(back.tensors.b.data)).toEqual(Array.from(tensors.b.data));
    expect(back.tensors.a.shape).toEqual([2, 3]);
    expect(back.metadata.note).toBe('x');
  });

  it('writes atomically (no temp file left; a failed write keeps the old file) and rejects garbage', () => {
    const dir = tmp();
    const f = join(dir, 'w.safetensors');
    saveSafetensors(f, { w: { data: Float32Array.from([1, 2]), shape: [2] } });
    saveSafetensors(f, { w: { data: Float32Array.from([3, 4]), shape: [2] } });
    expect(readdirSync(dir)).toEqual(['w.safetensors']);
    expect(Array.from(loadSafetensors(f).tensors.w.data)).toEqual([3, 4]);
    expect(() => saveSafetensors(f, { w: { data: Float32Array.from([1]), shape: [2] } })).toThrow();
    expect(Array.from(loadSafetensors(f).tensors.w.data)).toEqual([3, 4]);
    expect(readdirSync(dir)).toEqual(['w.safetensors']);
    writeFileSync(join(dir, 'bad.safetensors'), 'hello world, not a checkpoint');
    expect(() => loadSafetensors(join(dir, 'bad.safetensors'))).toThrow(/safetensors/);
    expect(() => loadSafetensors(join(dir, 'missing.safetensors'))).toThrow(/not found/);
  });
});

describe('trainPipeline', () => {
  const data = syntheticRelevant({ n: 600, features: 10, relevant: 5, seed: 1 });

  it('the MLP learns syntheticRelevant well above chance; loadTrainedModel reproduces its predictions', async () => {
    const out = tmp();
    const p = pipeline(data, { use: 'none' }, { epochs: 15, lr: 0.01 }, [32]);
    const events: TrainingEvent[] = [];
    const res = await trainPipeline(p, { outDir: join(out, 'run'), listener: (e) => events.push(e) });
    expect(res.metrics.accuracy).toBeGreaterThan(0.75);
    const files = readdirSync(join(out, 'run')).sort();
    expect(files).toEqual(['backbone.safetensors', 'checkpoints', LOG_FILE, 'metrics.json', 'run.json'].sort());
    const log = readFileSync(join(out, 'run', LOG_FILE), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(log.filter((e) => e.type === 'epoch')).toHaveLength(15);
    expect(log.some((e) => e.type === 'validation')).toBe(true);
    expect(events.at(-1)!.type).toBe('done');
    const p2 = pipeline(data, { use: 'none' }, {}, [32]);
    const loaded = await loadTrainedModel(join(out, 'run'), p2);
    const a = (await p.backbone.forward(data.test.inputs)).output;
    const b = await loaded.predict(data.test.inputs);
    expect(Array.from(b.data)).toEqual(Array.from(a.data));
  });

  it('same seed ⇒ bit-identical weights; another seed ⇒ different weights', async () => {
    const out = tmp();
    const run = async (seed: number, name: string) => {
      const p = pipeline(data, { use: 'scores-activation' }, { epochs: 2, seed, validationSplit: 0.1 }, [8]);
      await trainPipeline(p, { outDir: join(out, name) });
      return readFileSync(join(out, name, 'scores-activation.safetensors'));
    };
    const a = await run(3, 'a');
    const b = await run(3, 'b');
    const c = await run(4, 'c');
    expect(Buffer.compare(a, b)).toBe(0);
    expect(Buffer.compare(a, c)).not.toBe(0);
  });

  it('with dropout: a run killed after epoch 2 and resumed gives the same weights as an uninterrupted run', async () => {
    const out = tmp();
    const mk = () => pipeline(data, { use: 'none' }, { epochs: 4, validationSplit: 0.2, batchSize: 64 }, [8], 0.2);
    await trainPipeline(mk(), { outDir: join(out, 'full') });
    let epochsDone = 0;
    const kill = (e: TrainingEvent): void => {
      if (e.type === 'epoch') epochsDone = e.epoch;
      if (e.type === 'checkpoint' && epochsDone === 2) throw new Error('killed'); // right after epoch 2's checkpoint
    };
    await expect(trainPipeline(mk(), { outDir: join(out, 'killed'), listener: kill })).rejects.toThrow('killed');
    expect(existsSync(join(out, 'killed', 'metrics.json'))).toBe(false);
    const events: TrainingEvent[] = [];
    await trainPipeline(mk(), { outDir: join(out, 'killed'), resume: true, listener: (e) => events.push(e) });
    expect(events[0]).toMatchObject({ type: 'stage', message: expect.stringMatching(/resuming at step 12 of 24/) });
    expect(events.filter((e) => e.type === 'epoch').map((e) => (e as { epoch: number }).epoch)).toEqual([3, 4]);
    const full = loadSafetensors(join(out, 'full', 'backbone.safetensors')).tensors;
    const resumed = loadSafetensors(join(out, 'killed', 'backbone.safetensors')).tensors;
    for (const k of Object.keys(full)) expect(Array.from(resumed[k].data)).toEqual(Array.from(full[k].data));
    // refuses to overwrite, refuses to resume a finished run
    await expect(trainPipeline(mk(), { outDir: join(out, 'full') })).rejects.toThrow(/not empty/);
    await expect(trainPipeline(mk(), { outDir: join(out, 'full'), resume: true })).rejects.toThrow(/already finished/);
  });

  it('scores-activation emits a ranking each epoch with feature names and returns the final ranking', async () => {
    const out = tmp();
    const events: TrainingEvent[] = [];
    const p = pipeline(data, { use: 'scores-activation', scaleByD: true }, { epochs: 3 }, [16]);
    const res = await trainPipeline(p, { outDir: join(out, 'sa'), listener: (e) => events.push(e) });
    const rankings = events.filter((e) => e.type === 'ranking');
    expect(rankings).toHaveLength(3);
    expect((rankings[0] as { ranking: Array<{ feature: string }> }).ranking[0].feature).toMatch(/^x|f|feature/);
    expect(res.ranking).toHaveLength(10);
    expect(res.metrics.ranking_precision).toBeGreaterThanOrEqual(0);
    const loaded = await loadTrainedModel(join(out, 'sa'), pipeline(data, { use: 'scores-activation', scaleByD: true }, {}, [16]));
    expect(loaded.ranking!()).toEqual(res.ranking);
  });

  it('sop over an untrained MLP: fits the MLP (own stage), freezes it, trains SOP; the run loads as a FaithfulExplainer', async () => {
    const prod = syntheticProduct({ n: 500, features: 6, groups: [[0, 1], [2, 3]], seed: 2 });
    const out = tmp();
    const p = pipeline(prod, { use: 'sop', groups: 4, keep: 0.34 }, { epochs: 1.5, backboneEpochs: 10, maskBatchSize: 7 }, [16]);
    const stages: string[] = [];
    const epochs: Record<string, number> = {};
    const res = await trainPipeline(p, {
      outDir: join(out, 'sop'),
      listener: (e) => {
        if (e.type === 'stage') stages.push(e.stage);
        if (e.type === 'epoch') epochs[e.stage] = (epochs[e.stage] ?? 0) + 1;
      },
    });
    expect(stages.slice(0, 2)).toEqual(['backbone', 'sop']);
    expect(epochs).toEqual({ backbone: 10, sop: 2 }); // backboneEpochs, and 1.5 epochs = one full + one half epoch
    expect(res.metrics.max_abs_sum_error).toBeLessThan(1e-5);
    expect(res.metrics.accuracy).toBeGreaterThan(0.5);
    expect(existsSync(join(out, 'sop', 'sop.safetensors'))).toBe(true);
    const bbBefore = Float32Array.from((p.backbone as MlpBackbone).weights[0].data);
    const loaded = await loadTrainedModel(join(out, 'sop'), pipeline(prod, { use: 'sop', groups: 4, keep: 0.34 }, {}, [16]));
    expect(Array.from((loaded.backbone as MlpBackbone).weights[0].data)).toEqual(Array.from(bbBefore));
    const e = await loaded.explainer!.explain(prod.test.inputs, { keep: 0.34 });
    const pred = await p.backbone.forward(prod.test.inputs);
    expect(e.outputs.length).toBe(pred.output.data.length);
    const again = await loaded.predict(prod.test.inputs);
    expect(Array.from(again.data)).toEqual(Array.from(e.outputs));
  });

  it('sop regression: MSE loss, one sparsemax per output, output = Σ contributions', async () => {
    const rng = new Rng(3);
    const n = 300;
    const d = 5;
    const x = new Float32Array(n * d);
    for (let i = 0; i < x.length; i++) x[i] = rng.normal();
    const y = new Float32Array(n * 2);
    for (let i = 0; i < n; i++) {
      y[i * 2] = x[i * d] * x[i * d + 1];
      y[i * 2 + 1] = x[i * d + 2];
    }
    const split = (a: number, b: number) => ({ inputs: { x: { data: x.slice(a * d, b * d), shape: [b - a, d] } }, labels: y.slice(a * 2, b * 2) });
    const reg: Dataset = { name: 'reg', task: 'regression', modality: 'tabular', numOutputs: 2, train: split(0, 240), test: split(240, 300) };
    const out = tmp();
    const res = await trainPipeline(pipeline(reg, { use: 'sop', groups: 5, keep: 0.4 }, { epochs: 2, backbone: { epochs: 20 } }, [16]), { outDir: join(out, 'reg') });
    expect(Number.isFinite(res.metrics.mse)).toBe(true);
    expect(res.metrics.backbone_mse).toBeLessThan(1.5);
    expect(res.metrics.max_abs_sum_error).toBeLessThan(1e-5);
    const loaded = await loadTrainedModel(join(out, 'reg'), pipeline(reg, { use: 'sop', groups: 5, keep: 0.4 }, {}, [16]));
    const r = await loaded.sop!.predict(reg.test.inputs);
    for (let b = 0; b < 3; b++) for (let c = 0; c < 2; c++) {
      let s = 0;
      for (let j = 0; j < 5; j++) s += r.weights[(b * 5 + j) * 2 + c];
      expect(s).toBeCloseTo(1, 5); // a separate sparsemax over groups per output
    }
  });

  it('config errors are UserErrors naming the key', async () => {
    const out = tmp();
    await expect(trainPipeline(pipeline(data, { use: 'sop', groupz: 3 }), { outDir: join(out, 'a') })).rejects.toThrow(/groupz/);
    await expect(trainPipeline(pipeline(data, { use: 'nope' }), { outDir: join(out, 'b') })).rejects.toThrow(/unknown model 'nope'/);
    await expect(trainPipeline(pipeline(data, { use: 'none' }, { lr: -1 }), { outDir: join(out, 'c') })).rejects.toThrow(/train.lr/);
  });

  it('validates every N steps, keeps the best weights and stops early without improvement', async () => {
    const out = tmp();
    const events: TrainingEvent[] = [];
    // lr so small that float32 weights cannot move: no validation after the first improves
    const p = pipeline(data, { use: 'none' }, { epochs: 5, validateEvery: 3, earlyStopping: 2, lr: 1e-12, weightDecay: 0 }, [8]);
    await trainPipeline(p, { outDir: join(out, 'es'), listener: (e) => events.push(e) });
    const vals = events.filter((e) => e.type === 'validation') as Array<{ step: number; best: boolean }>;
    expect(vals.map((v) => v.step)).toEqual([3, 6, 9]);
    expect(vals.map((v) => v.best)).toEqual([true, false, false]);
    expect(events.some((e) => e.type === 'stage' && /early stopping at step 9/.test(e.message ?? ''))).toBe(true);
  });

  it('sop: a run killed inside the sop stage resumes without refitting the backbone and matches an uninterrupted run', async () => {
    const prod = syntheticProduct({ n: 300, features: 6, groups: [[0, 1], [2, 3]], seed: 5 });
    const out = tmp();
    const mk = () => pipeline(prod, { use: 'sop', groups: 3, keep: 0.34 }, { epochs: 3, backboneEpochs: 3 }, [8]);
    await trainPipeline(mk(), { outDir: join(out, 'full') });
    let inSop = false;
    const kill = (e: TrainingEvent): void => {
      if (e.type === 'epoch' && e.stage === 'sop' && e.epoch === 1) inSop = true;
      if (e.type === 'checkpoint' && inSop) throw new Error('killed');
    };
    await expect(trainPipeline(mk(), { outDir: join(out, 'k'), listener: kill })).rejects.toThrow('killed');
    const steps: Array<[string, number]> = [];
    await trainPipeline(mk(), { outDir: join(out, 'k'), resume: true, listener: (e) => e.type === 'step' && steps.push([e.stage, e.step]) });
    expect(steps.every(([stage]) => stage === 'sop')).toBe(true);
    const a = readFileSync(join(out, 'full', 'sop.safetensors'));
    const b = readFileSync(join(out, 'k', 'sop.safetensors'));
    expect(Buffer.compare(a, b)).toBe(0);
  });
});
