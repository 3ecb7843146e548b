import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Pipeline } from '../config/pipeline.js';
import type { Inputs } from '../inputs.js';
import { UserError } from '../errors.js';
import type { FloatTensor } from '../tensor.js';
import { MlpBackbone, MLP_WEIGHTS_FILE } from '../models/mlp.js';
import { FINETUNE_PREFIX, ScoresActivation, ScoresActivationBackboneModel, ScoresActivationModel } from '../models/scores-activation.js';
import { SopModel, type SopOptions } from '../models/sop.js';
import { firstRows, sliceInputs } from '../inputs.js';
import { attentionGeneratorFactory } from '../models/attention-generator.js';
import { sparsemaxSelectorFactory } from '../models/sparsemax-selector.js';
import type { GroupGeneratorFactory } from '../group-generator.js';
import type { GroupSelectorFactory } from '../group-selector.js';
import { SopExplainer } from '../models/sop-explainer.js';
import type { ModelFactory, TrainedModel } from '../models/model.js';
import type { RunContext } from './run.js';
import { runStage, loadStageWeights, stepPlan, type StageTask } from './trainer.js';
import { taskLoss, takePart, predictChunked, taskMetrics, validationScore } from './helpers.js';
import { loadSafetensors } from './safetensors.js';

function labelWidth(p: Pipeline): number {
  return p.config.task === 'classification' ? 1 : p.dataset.numOutputs;
}

function backbonePredict(p: Pipeline): (inputs: Inputs) => Promise<FloatTensor> {
  return async (inputs) => (await p.backbone.forward(inputs)).output;
}

/** Stage 'backbone': supervised fit of an untrained built-in MLP on the training rows (then saved as backbone.safetensors). */
async function fitMlp(p: Pipeline, run: RunContext): Promise<void> {
  const mlp = p.backbone as MlpBackbone;
  const w = labelWidth(p);
  mlp.setTrainable(true);
  const task: StageTask = {
    stage: 'backbone',
    params: mlp.parameterTensors(),
    numRows: run.train.rows,
    async loss(rows, { rng }) {
      const part = takePart(run.train, rows, w);
      return taskLoss(p.config.task, mlp.forwardTensor(mlp.flatten(part.inputs), true, rng).output, part.labels);
    },
    validate: run.validation.rows
      ? async () => {
          const m = taskMetrics(p.config.task, await predictChunked(backbonePredict(p), run.validation.inputs), run.validation.labels);
          return { metrics: m, score: validationScore(p.config.task, m) };
        }
      : undefined,
  };
  await runStage(task, run.settings('backbone'), run);
  mlp.trained = true;
}

function isUntrainedMlp(p: Pipeline): boolean {
  return p.backbone instanceof MlpBackbone && !p.backbone.trained;
}

/** Load backbone.safetensors from a run into the pipeline's MLP (when both exist). */
function loadRunBackbone(runDir: string, p: Pipeline): void {
  const f = join(runDir, MLP_WEIGHTS_FILE);
  if (p.backbone instanceof MlpBackbone && existsSync(f)) p.backbone.loadWeights(loadSafetensors(f).tensors);
}

// ---------------------------------------------------------------- none

export const noneModelFactory: ModelFactory = {
  name: 'none',
  description: 'the backbone alone (an untrained built-in MLP is fitted first)',
  async train(p, run) {
    if (isUntrainedMlp(p)) await fitMlp(p, run);
    return noneModel(run.outDir, p);
  },
  async load(runDir, p) {
    loadRunBackbone(runDir, p);
    return noneModel(runDir, p);
  },
};

function noneModel(runDir: string, p: Pipeline): TrainedModel {
  return { kind: 'none', runDir, backbone: p.backbone, predict: backbonePredict(p) };
}

// ---------------------------------------------------------------- scores-activation

const SA_KEYS = ['use', 'temperature', 'scaleByD'];

function scoresOptions(p: Pipeline): { temperature?: number; scaleByD?: boolean } {
  const m = p.config.model;
  for (const k of Object.keys(m)) {
    if (!SA_KEYS.includes(k)) throw new UserError(`model: unknown option '${k}' for scores-activation`, `use only: ${SA_KEYS.slice(1).join(', ')}`);
  }
  if (m.temperature !== undefined && typeof m.temperature !== 'number') throw new UserError('model.temperature: expected a number', 'write e.g. temperature: 1');
  if (m.scaleByD !== undefined && typeof m.scaleByD !== 'boolean') throw new UserError('model.scaleByD: expected true or false', 'write scaleByD: true');
  return { temperature: m.temperature as number | undefined, scaleByD: m.scaleByD as boolean | undefined };
}

/**
 * The backbone's role: an MLP is trained jointly with the layer; any other backbone stays frozen (apart from the
 * weights named in `backbone.finetune`) and must provide gradients (`vjp`).
 */
function isJoint(p: Pipeline): boolean {
  if (p.backbone instanceof MlpBackbone) return true;
  if (!p.backbone.vjp || !p.backbone.capabilities.vjp) {
    throw new UserError(
      `model scores-activation needs gradients through the backbone, and backbone '${p.backbone.name}' provides none (no vjp)`,
      'use backbone: {use: onnx, ...} (differentiated through its graph, kept frozen) or backbone: {use: mlp, hidden: [64, 64]} (trained jointly)',
    );
  }
  return false;
}

/** Initial values of the weights named in `backbone.finetune` (frozen-backbone mode). */
function finetuneStart(p: Pipeline): Record<string, FloatTensor> {
  const raw = p.config.backbone.finetune;
  if (raw === undefined || raw === null) return {};
  const names = typeof raw === 'string' ? [raw] : raw;
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string' && n.length > 0)) {
    throw new UserError(`backbone.finetune: expected a list of weight names, found ${JSON.stringify(raw)}`, 'write backbone.finetune: [out.weight, out.bias]');
  }
  if (names.length === 0) return {};
  const all = p.backbone.parameters?.();
  if (!all) throw new UserError(`backbone.finetune: backbone '${p.backbone.name}' does not list its weights (no parameters())`, 'remove backbone.finetune, or use an ONNX backbone');
  const out: Record<string, FloatTensor> = {};
  for (const n of names as string[]) {
    const t = all[n];
    if (!t) {
      const known = Object.keys(all);
      throw new UserError(`backbone.finetune: '${n}' is not a weight of backbone '${p.backbone.name}'`, `use weight names such as ${known.slice(0, 6).join(', ')}${known.length > 6 ? ', ...' : ''} (\`sop inspect MODEL.onnx\` lists them)`);
    }
    out[n] = t;
  }
  return out;
}

/** ScoresActivation over the frozen (optionally partly fine-tuned) backbone; one score per element of an input row. */
function frozenModel(p: Pipeline): ScoresActivationBackboneModel {
  const rowShape = p.dataset.train.inputs.x.shape.slice(1);
  const d = rowShape.reduce((a, b) => a * b, 1);
  const opts = scoresOptions(p);
  // a frozen backbone sees x ⊙ softmax(s): without ×d every input would start shrunk d-fold, so scale by default
  const layer = new ScoresActivation(d, { ...opts, scaleByD: opts.scaleByD ?? true });
  return new ScoresActivationBackboneModel(layer, p.backbone, rowShape, finetuneStart(p));
}

function featureNamesFor(p: Pipeline, d: number): string[] {
  const names = p.dataset.featureNames;
  if (names && names.length === d) return names;
  if (p.space.numFeatures === d) return p.space.featureNames();
  return Array.from({ length: d }, (_, i) => `x${i}`);
}

function saModel(runDir: string, p: Pipeline, model: ScoresActivationModel | ScoresActivationBackboneModel): TrainedModel {
  const names = featureNamesFor(p, model.layer.numFeatures);
  return {
    kind: 'scores-activation',
    runDir,
    backbone: p.backbone,
    scores: model.layer,
    predict: async (inputs) => model.predict(inputs),
    ranking: () => model.layer.ranking(names),
    async extraMetrics(): Promise<Record<string, number>> {
      const rel = p.dataset.relevantFeatures;
      if (!rel?.length) return {};
      const top = model.layer.ranking(names.map((_, i) => String(i))).slice(0, rel.length);
      const hits = top.filter((r) => rel.includes(Number(r.feature))).length;
      return { ranking_precision: hits / rel.length };
    },
  };
}

export const scoresActivationModelFactory: ModelFactory = {
  name: 'scores-activation',
  description:
    'ScoresActivation layer x ⊙ softmax(s/T) in front of the backbone: trained end to end with the MLP, or in front of a frozen differentiable backbone (onnx; weights in backbone.finetune are tuned too); global ranking argsort(w)',
  async train(p, run) {
    const opts = scoresOptions(p);
    const joint = isJoint(p);
    const mlp = joint ? (p.backbone as MlpBackbone) : undefined;
    if (mlp) mlp.setTrainable(true);
    const model = mlp ? new ScoresActivationModel(new ScoresActivation(mlp.inputDim, opts), mlp) : frozenModel(p);
    const layer = model.layer;
    const names = featureNamesFor(p, layer.numFeatures);
    const w = labelWidth(p);
    const stage = 'scores-activation';
    const task: StageTask = {
      stage,
      params: model.parameterTensors(),
      numRows: run.train.rows,
      async loss(rows, { rng }) {
        const part = takePart(run.train, rows, w);
        if (model instanceof ScoresActivationModel) return taskLoss(p.config.task, model.forwardTensor(mlp!.flatten(part.inputs), true, rng), part.labels);
        return model.lossTensor(part.inputs, (out) => taskLoss(p.config.task, out, part.labels));
      },
      validate: run.validation.rows
        ? async () => {
            const m = taskMetrics(p.config.task, await predictChunked(async (x) => model.predict(x), run.validation.inputs), run.validation.labels);
            return { metrics: m, score: validationScore(p.config.task, m) };
          }
        : undefined,
      onEpochEnd(epoch) {
        run.emit({ type: 'ranking', stage, epoch, ranking: layer.ranking(names) });
      },
    };
    await runStage(task, run.settings(stage), run);
    if (mlp) mlp.trained = true;
    return saModel(run.outDir, p, model);
  },
  async load(runDir, p) {
    const t = loadStageWeights(runDir, 'scores-activation');
    if (isJoint(p)) {
      const mlp = p.backbone as MlpBackbone;
      const layer = new ScoresActivation(mlp.inputDim, scoresOptions(p));
      const model = new ScoresActivationModel(layer, mlp);
      layer.s.data.set(requireTensor(t, 'scores.s', layer.s.size));
      mlp.loadWeights(t, 'mlp.');
      return saModel(runDir, p, model);
    }
    const model = frozenModel(p);
    model.layer.s.data.set(requireTensor(t, 'scores.s', model.layer.s.size));
    for (const [n, param] of Object.entries(model.finetuned)) param.data.set(requireTensor(t, `${FINETUNE_PREFIX}${n}`, param.size));
    return saModel(runDir, p, model);
  },
};

function requireTensor(t: Record<string, FloatTensor>, name: string, size: number): Float32Array {
  const x = t[name];
  if (!x || x.data.length !== size) throw new UserError(`checkpoint lacks '${name}' (or it has the wrong size)`, 'use the run folder of a matching config');
  return x.data;
}

// ---------------------------------------------------------------- sop

const SOP_KEYS = [
  'use',
  'groups',
  'keep',
  'heads',
  'queries',
  'embeddings',
  'embedDim',
  'positionEmbedding',
  'groupGenScale',
  'groupSelScale',
  'blur',
  'maskBatchSize',
  'selectorKeys',
  'generator',
  'selector',
  'generatorOptions',
  'selectorOptions',
];

export function sopOptionsFromConfig(p: Pipeline): SopOptions {
  const m = p.config.model;
  for (const k of Object.keys(m)) {
    if (!SOP_KEYS.includes(k)) throw new UserError(`model: unknown option '${k}' for sop`, `use only: ${SOP_KEYS.slice(1).join(', ')}`);
  }
  const num = (k: string): number | undefined => {
    if (m[k] === undefined) return undefined;
    if (typeof m[k] !== 'number') throw new UserError(`model.${k}: expected a number, found ${JSON.stringify(m[k])}`, `write e.g. ${k}: 1`);
    return m[k] as number;
  };
  let blur: SopOptions['blur'];
  if (m.blur !== undefined && m.blur !== false) {
    const b = m.blur as { kernel?: unknown; sigma?: unknown };
    if (typeof b !== 'object' || typeof b.kernel !== 'number' || typeof b.sigma !== 'number') throw new UserError('model.blur: expected {kernel, sigma}', 'write e.g. blur: {kernel: 3, sigma: 1}');
    blur = { kernel: b.kernel, sigma: b.sigma };
  }
  return {
    groups: num('groups'),
    keep: num('keep'),
    heads: num('heads'),
    queries: m.queries as SopOptions['queries'],
    embeddings: m.embeddings as SopOptions['embeddings'],
    embedDim: num('embedDim'),
    positionEmbedding: m.positionEmbedding as boolean | undefined,
    groupGenScale: num('groupGenScale'),
    groupSelScale: num('groupSelScale'),
    blur,
    maskBatchSize: num('maskBatchSize') ?? trainMaskBatchSize(p),
    selectorKeys: m.selectorKeys as SopOptions['selectorKeys'],
    seed: p.config.train.seed,
  };
}

function trainMaskBatchSize(p: Pipeline): number | undefined {
  const v = p.config.train.maskBatchSize;
  if (v === undefined) return undefined;
  if (typeof v !== 'number') throw new UserError('train.maskBatchSize: expected a number', 'write e.g. maskBatchSize: 256');
  return v;
}

/** Build an (untrained) SOP model over the pipeline's backbone. */
export function buildSop(p: Pipeline): SopModel {
  const m = p.config.model;
  const named = <T>(slot: 'generator' | 'selector', fallback: T): T => {
    const name = m[slot];
    if (name === undefined) return fallback;
    if (typeof name !== 'string') throw new UserError(`model.${slot}: expected a plugin name, found ${JSON.stringify(name)}`, `e.g. ${slot}: ${slot === 'generator' ? 'attention' : 'sparsemax'}`);
    if (!p.resolve) {
      const builtin = slot === 'generator' ? attentionGeneratorFactory : sparsemaxSelectorFactory;
      if (name === builtin.name) return builtin as T;
      throw new UserError(`model.${slot}: '${name}' needs the plugin registry`, 'build the pipeline with buildPipeline (the CLI does)');
    }
    return p.resolve<T>(slot, name, `model.${slot}`);
  };
  const extra = (k: string): Record<string, unknown> => {
    const v = m[k];
    if (v === undefined) return {};
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UserError(`model.${k}: expected a mapping of options`, `e.g. ${k}: {key: value}`);
    return v as Record<string, unknown>;
  };
  const options = { ...sopOptionsFromConfig(p), ...extra('generatorOptions'), ...extra('selectorOptions') };
  return new SopModel(
    {
      backbone: p.backbone,
      space: p.space,
      masker: p.masker,
      task: p.config.task,
      numOutputs: p.dataset.numOutputs,
      generatorFactory: named<GroupGeneratorFactory>('generator', attentionGeneratorFactory),
      selectorFactory: named<GroupSelectorFactory>('selector', sparsemaxSelectorFactory),
    },
    firstRows(p.dataset.train.inputs, 2),
    options,
  );
}

function sopTrained(runDir: string, p: Pipeline, sop: SopModel): TrainedModel {
  const predict = async (inputs: Inputs): Promise<FloatTensor> => {
    const r = await sop.predict(inputs);
    return { data: r.output, shape: [r.batch, r.numOutputs] };
  };
  return {
    kind: 'sop',
    runDir,
    backbone: p.backbone,
    sop,
    predict,
    explainer: new SopExplainer(sop),
    async extraMetrics(inputs, labels) {
      const bb = taskMetrics(p.config.task, await predictChunked(backbonePredict(p), inputs), labels);
      // faithfulness by construction: max |Σ_j contributions − y|
      let maxErr = 0;
      const n = inputs.x.shape[0];
      for (let s = 0; s < n; s += 256) {
        const r = await sop.predict(sliceInputs(inputs, s, Math.min(n, s + 256)));
        for (let b = 0; b < r.batch; b++) {
          for (let c = 0; c < r.numOutputs; c++) {
            let acc = 0;
            for (let j = 0; j < r.numGroups; j++) acc += r.contributions[(b * r.numGroups + j) * r.numOutputs + c];
            maxErr = Math.max(maxErr, Math.abs(acc - r.output[b * r.numOutputs + c]));
          }
        }
      }
      const out: Record<string, number> = { max_abs_sum_error: maxErr };
      for (const [k, v] of Object.entries(bb)) out[`backbone_${k}`] = v;
      return out;
    },
  };
}

export const sopModelFactory: ModelFactory = {
  name: 'sop',
  description: 'Sum-of-Parts over the frozen backbone (an untrained built-in MLP is fitted first, then frozen)',
  async train(p, run) {
    sopOptionsFromConfig(p); // fail on a config typo before any training
    run.settings('sop');
    if (isUntrainedMlp(p)) await fitMlp(p, run);
    if (p.backbone instanceof MlpBackbone) p.backbone.setTrainable(false);
    const sop = buildSop(p);
    const w = labelWidth(p);
    const settings = run.settings('sop');
    const H = sop.numHeads;
    const n = run.train.rows;
    const { totalSteps } = stepPlan(settings, n);
    const phase = Math.ceil(totalSteps / H);
    if (H > 1) settings.phaseLength = phase;
    const task: StageTask = {
      stage: 'sop',
      params: sop.parameterTensors(),
      numRows: n,
      async loss(rows, { step, rng }) {
        const part = takePart(run.train, rows, w);
        const head = Math.min(H - 1, Math.floor(step / phase));
        const t = await sop.forward(part.inputs, { grad: true, head, rng });
        return taskLoss(p.config.task, t.output, part.labels);
      },
      validate: run.validation.rows
        ? async () => {
            const m = taskMetrics(p.config.task, await predictChunked(async (x) => sopPredictOutput(sop, x), run.validation.inputs, 256), run.validation.labels);
            return { metrics: m, score: validationScore(p.config.task, m) };
          }
        : undefined,
    };
    await runStage(task, settings, run);
    return sopTrained(run.outDir, p, sop);
  },
  async load(runDir, p) {
    loadRunBackbone(runDir, p);
    if (p.backbone instanceof MlpBackbone) p.backbone.setTrainable(false);
    const sop = buildSop(p);
    sop.loadParameters(loadStageWeights(runDir, 'sop'));
    return sopTrained(runDir, p, sop);
  },
};

async function sopPredictOutput(sop: SopModel, inputs: Inputs): Promise<FloatTensor> {
  const r = await sop.predict(inputs);
  return { data: r.output, shape: [r.batch, r.numOutputs] };
}

export const builtinModelFactories: Record<string, ModelFactory> = {
  sop: sopModelFactory,
  'scores-activation': scoresActivationModelFactory,
  none: noneModelFactory,
};
