import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { TrainConfig } from '../config/types.js';
import type { TrainingEvent } from '../events.js';
import { UserError } from '../errors.js';
import { Rng } from '../rng.js';
import type { FloatTensor } from '../tensor.js';
import type { Tensor } from '../autograd/index.js';
import { AdamW, clipGradNorm, makeSchedule, type ScheduleName } from '../optim/index.js';
import { loadSafetensors, saveSafetensors } from './safetensors.js';

/** Settings of one training stage (the `train:` block, with `train.<stage>: {...}` overriding it). */
export interface StageSettings {
  epochs?: number;
  steps?: number;
  batchSize: number;
  lr: number;
  seed: number;
  weightDecay: number;
  schedule: ScheduleName;
  warmup: number;
  clipGradNorm?: number;
  validateEvery?: number;
  earlyStopping: number;
  /** Restart the schedule every phaseLength steps (one phase per SOP generator head). */
  phaseLength?: number;
}

/**
 * Merge `train` with its per-stage overrides and apply defaults. Overrides: the flat keys `backboneEpochs`,
 * `backboneLr` (stage 'backbone', as the config schema names them), then a block `train.<stage>: {...}` (API use).
 */
export function stageSettings(train: TrainConfig, stage: string): StageSettings {
  const over = (train[stage] && typeof train[stage] === 'object' ? train[stage] : {}) as Partial<TrainConfig>;
  const flat: Partial<TrainConfig> = {};
  if (stage === 'backbone') {
    if (train.backboneEpochs !== undefined) {
      flat.epochs = train.backboneEpochs as number;
      flat.steps = undefined;
    }
    if (train.backboneLr !== undefined) flat.lr = train.backboneLr as number;
  }
  const t = { ...train, ...flat, ...over } as TrainConfig;
  const num = (v: unknown, what: string, ok: (x: number) => boolean, hint: string): number | undefined => {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !ok(v)) throw new UserError(`train.${what}: ${JSON.stringify(v)} is not valid`, hint);
    return v;
  };
  const posInt = (x: number) => Number.isInteger(x) && x > 0;
  const s: StageSettings = {
    epochs: num(t.epochs, 'epochs', (x) => x > 0, 'use a positive number, e.g. epochs: 10 (fractions such as 0.5 are allowed)'),
    steps: num(t.steps, 'steps', posInt, 'use a positive integer, e.g. steps: 1000'),
    batchSize: num(t.batchSize, 'batchSize', posInt, 'use e.g. batchSize: 32') ?? 32,
    lr: num(t.lr, 'lr', (x) => x > 0, 'use e.g. lr: 0.001') ?? 1e-3,
    seed: num(t.seed, 'seed', Number.isInteger, 'use an integer seed') ?? 0,
    weightDecay: num(t.weightDecay, 'weightDecay', (x) => x >= 0, 'use e.g. weightDecay: 0.01') ?? 0.01,
    schedule: (t.schedule ?? 'constant') as ScheduleName,
    warmup: num(t.warmup, 'warmup', (x) => Number.isInteger(x) && x >= 0, 'use a number of steps, e.g. warmup: 100') ?? 0,
    clipGradNorm: num(t.clipGradNorm, 'clipGradNorm', (x) => x > 0, 'use e.g. clipGradNorm: 1'),
    validateEvery: num(t.validateEvery, 'validateEvery', posInt, 'use a number of steps, e.g. validateEvery: 100'),
    earlyStopping: num(t.earlyStopping, 'earlyStopping', (x) => Number.isInteger(x) && x >= 0, 'use a number of validations, e.g. earlyStopping: 5') ?? 0,
  };
  if (!['warmup-inverse-sqrt', 'cosine', 'constant'].includes(s.schedule)) {
    throw new UserError(`train.schedule: unknown schedule '${s.schedule}'`, 'use warmup-inverse-sqrt, cosine or constant');
  }
  if (s.epochs === undefined && s.steps === undefined) s.epochs = 10;
  return s;
}

/** Batches per epoch and total optimizer steps for `numRows` training rows (`steps` wins over `epochs`). */
export function stepPlan(settings: StageSettings, numRows: number): { batchSize: number; perEpoch: number; totalSteps: number } {
  const batchSize = Math.min(settings.batchSize, numRows);
  const perEpoch = Math.ceil(numRows / batchSize);
  const totalSteps = settings.steps ?? Math.max(1, Math.round(settings.epochs! * perEpoch));
  return { batchSize, perEpoch, totalSteps };
}

/** A stage's model-specific parts; the loop (batching, optimiser, validation, checkpoints, resume) is generic. */
export interface StageTask {
  stage: string;
  /** Trainable parameters by name (also what is checkpointed). */
  params: Record<string, Tensor>;
  /** Number of training rows (indices 0..n-1 into the task's own training rows). */
  numRows: number;
  /** Scalar loss (with graph) on these training rows. `rng` is this step's generator (dropout, random queries). */
  loss(rows: Int32Array, info: { step: number; totalSteps: number; rng: Rng }): Promise<Tensor>;
  /** Validation metrics and a score where higher is better; absent = no validation (keep the last weights). */
  validate?(): Promise<{ metrics: Record<string, number>; score: number }>;
  /** Called after each epoch (ranking events). */
  onEpochEnd?(epoch: number): void;
}

export interface StageResult {
  steps: number;
  epochs: number;
  /** Best validation metrics (or the last ones). */
  validation?: Record<string, number>;
  resumed: boolean;
  stoppedEarly: boolean;
}

/** Progress saved in a checkpoint's metadata. */
interface Progress {
  stage: string;
  step: number;
  totalSteps: number;
  optimizerStep: number;
  bestScore: number | null;
  bestStep: number;
  bestMetrics?: Record<string, number>;
  badValidations: number;
  done: boolean;
  stoppedEarly: boolean;
  seed: number;
  /** How the per-epoch / per-step generators are derived (the rng "state"). */
  rng: string;
}

const RNG_DERIVATION = 'shuffle: Rng(mix(seed, stage, epoch)); step: Rng(mix(seed, stage, 1e6 + step))';

/** Deterministic 32-bit mix of a seed, a stage name and a counter. */
export function mixSeed(seed: number, stage: string, counter: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (let i = 0; i < stage.length; i++) h = Math.imul(h ^ stage.charCodeAt(i), 0x01000193) >>> 0;
  h = Math.imul(h ^ (counter >>> 0), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ Math.floor(counter / 4294967296), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

export function checkpointPath(outDir: string, stage: string): string {
  return join(outDir, 'checkpoints', `${stage}-last.safetensors`);
}

export function stageWeightsPath(outDir: string, stage: string): string {
  return join(outDir, `${stage}.safetensors`);
}

function snapshot(params: Record<string, Tensor>): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [k, p] of Object.entries(params)) out[k] = Float32Array.from(p.data);
  return out;
}

/**
 * Run one training stage: shuffled mini-batches, AdamW + schedule + clipping, validation every N steps (default: each
 * epoch) with the best weights kept, early stopping, an atomic checkpoint after every epoch and validation, and
 * resume from the last checkpoint. At the end the best weights are loaded into `task.params` and written to
 * `<outDir>/<stage>.safetensors`.
 */
export async function runStage(
  task: StageTask,
  settings: StageSettings,
  io: { outDir: string; resume: boolean; emit: (e: TrainingEvent) => void },
): Promise<StageResult> {
  const { stage } = task;
  const names = Object.keys(task.params).sort();
  const params = names.map((n) => task.params[n]);
  const n = task.numRows;
  if (n < 1) throw new UserError(`training stage '${stage}' has no training rows`, 'use a data set with more rows or a smaller validationSplit');
  const { batchSize: bs, perEpoch, totalSteps } = stepPlan(settings, n);
  const totalEpochs = Math.ceil(totalSteps / perEpoch);
  const optimizer = new AdamW(params, { lr: settings.lr, weightDecay: settings.weightDecay });
  const schedule = makeSchedule(settings.schedule, { warmup: settings.warmup, totalSteps, phaseLength: settings.phaseLength });
  const ckpt = checkpointPath(io.outDir, stage);

  let progress: Progress = {
    stage,
    step: 0,
    totalSteps,
    optimizerStep: 0,
    bestScore: null,
    bestStep: -1,
    badValidations: 0,
    done: false,
    stoppedEarly: false,
    seed: settings.seed,
    rng: RNG_DERIVATION,
  };
  let best: Record<string, Float32Array> | null = null;
  let resumed = false;

  if (io.resume && existsSync(ckpt)) {
    const file = loadSafetensors(ckpt);
    const saved = JSON.parse(file.metadata.progress ?? '{}') as Progress;
    if (saved.totalSteps !== totalSteps || saved.seed !== settings.seed) {
      throw new UserError(
        `cannot resume stage '${stage}': the checkpoint was written for ${saved.totalSteps} steps with seed ${saved.seed}, the config now asks for ${totalSteps} steps with seed ${settings.seed}`,
        'resume with the config the run was started with (the run folder has a copy), or start a new run',
      );
    }
    for (const name of names) {
      const t = file.tensors[`param.${name}`];
      if (!t || t.data.length !== task.params[name].size) throw new UserError(`checkpoint ${ckpt} lacks parameter '${name}' or has the wrong size`, 'start a new run (the model config changed)');
      task.params[name].data.set(t.data);
    }
    optimizer.setState({
      step: saved.optimizerStep,
      m: names.map((_, i) => file.tensors[`optim.m.${i}`].data),
      v: names.map((_, i) => file.tensors[`optim.v.${i}`].data),
    });
    if (file.tensors[`best.${names[0]}`]) best = Object.fromEntries(names.map((nm) => [nm, file.tensors[`best.${nm}`].data]));
    progress = saved;
    resumed = true;
    io.emit({ type: 'stage', stage, message: `resuming at step ${saved.step} of ${totalSteps}` });
  }

  const save = (): void => {
    const tensors: Record<string, FloatTensor> = {};
    const st = optimizer.getState();
    names.forEach((nm, i) => {
      const p = task.params[nm];
      tensors[`param.${nm}`] = { data: p.data, shape: p.shape };
      if (best) tensors[`best.${nm}`] = { data: best[nm], shape: p.shape };
      tensors[`optim.m.${i}`] = { data: st.m[i], shape: [st.m[i].length] };
      tensors[`optim.v.${i}`] = { data: st.v[i], shape: [st.v[i].length] };
    });
    progress.optimizerStep = st.step;
    saveSafetensors(ckpt, tensors, { format: 'sop-checkpoint-v1', progress: JSON.stringify(progress) });
    io.emit({ type: 'checkpoint', stage, path: ckpt, step: progress.step });
  };

  const validate = async (): Promise<void> => {
    if (!task.validate) return;
    const { metrics, score } = await task.validate();
    const improved = progress.bestScore === null || score > progress.bestScore;
    if (improved) {
      progress.bestScore = score;
      progress.bestStep = progress.step;
      progress.bestMetrics = metrics;
      progress.badValidations = 0;
      best = snapshot(task.params);
    } else progress.badValidations++;
    io.emit({ type: 'validation', stage, step: progress.step, metrics, best: improved });
  };

  if (!progress.done) {
    if (!resumed) io.emit({ type: 'stage', stage, message: `${totalSteps} steps (${totalEpochs} epochs of ${perEpoch} batches)` });
    let epochLoss = 0;
    let epochBatches = 0;
    while (progress.step < totalSteps && !progress.stoppedEarly) {
      const epoch = Math.floor(progress.step / perEpoch);
      const perm = new Rng(mixSeed(settings.seed, stage, epoch)).permutation(n);
      const b = progress.step % perEpoch;
      const rows = perm.subarray(b * bs, Math.min(n, (b + 1) * bs));
      const rng = new Rng(mixSeed(settings.seed, stage, 1e6 + progress.step));
      optimizer.zeroGrad();
      const loss = await task.loss(rows, { step: progress.step, totalSteps, rng });
      const lossValue = loss.item();
      if (!Number.isFinite(lossValue)) {
        throw new UserError(`training stage '${stage}': the loss became ${lossValue} at step ${progress.step}`, 'lower train.lr, set train.clipGradNorm, or check the data for extreme values');
      }
      loss.backward();
      if (settings.clipGradNorm) clipGradNorm(params, settings.clipGradNorm);
      const mult = schedule(progress.step);
      optimizer.step(mult);
      progress.step++;
      epochLoss += lossValue;
      epochBatches++;
      io.emit({ type: 'step', stage, step: progress.step, totalSteps, epoch, loss: lossValue, lr: settings.lr * mult });
      let validated = false;
      if (settings.validateEvery && progress.step % settings.validateEvery === 0) {
        await validate();
        validated = true;
      }
      const epochEnd = progress.step % perEpoch === 0 || progress.step === totalSteps;
      if (epochEnd) {
        if (!settings.validateEvery && !validated) {
          await validate();
          validated = true;
        }
        io.emit({ type: 'epoch', stage, epoch: epoch + 1, totalEpochs, loss: epochLoss / Math.max(1, epochBatches), metrics: progress.bestMetrics });
        task.onEpochEnd?.(epoch + 1);
        epochLoss = 0;
        epochBatches = 0;
      }
      if (validated && settings.earlyStopping > 0 && progress.badValidations >= settings.earlyStopping) {
        progress.stoppedEarly = true;
        io.emit({ type: 'stage', stage, message: `early stopping at step ${progress.step}: no improvement in ${settings.earlyStopping} validations` });
      }
      if (epochEnd || validated || progress.stoppedEarly) save();
    }
    progress.done = true;
    if (best) for (const nm of names) task.params[nm].data.set(best[nm]);
    save();
  } else if (best) {
    for (const nm of names) task.params[nm].data.set(best[nm]);
  }
  const finalTensors: Record<string, FloatTensor> = {};
  for (const nm of names) finalTensors[nm] = { data: task.params[nm].data, shape: [...task.params[nm].shape] };
  saveSafetensors(stageWeightsPath(io.outDir, stage), finalTensors, { format: 'sop-weights-v1', stage });
  return {
    steps: progress.step,
    epochs: Math.ceil(progress.step / perEpoch),
    validation: progress.bestMetrics,
    resumed,
    stoppedEarly: progress.stoppedEarly,
  };
}

/** Tensors of a finished stage (`<stage>.safetensors`). */
export function loadStageWeights(outDir: string, stage: string): Record<string, FloatTensor> {
  return loadSafetensors(stageWeightsPath(outDir, stage)).tensors;
}
