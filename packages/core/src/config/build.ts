import type { Container } from 'inversify';
import { resolvePlugin, loadPlugins } from '../di/container.js';
import type { DataLoader, Dataset } from '../dataset.js';
import type { BackboneFactory } from '../backbone.js';
import type { FeatureSpaceFactory } from '../feature-space.js';
import type { MaskerFactory } from '../masker.js';
import { Rng } from '../rng.js';
import type { Pipeline } from './pipeline.js';
import type { LoadedConfig } from './load.js';
import { UserError } from '../errors.js';
import type { Slot } from '../di/tokens.js';

const DEFAULT_MASKER: Record<string, string> = { columns: 'zero', patches: 'zero', segments: 'zero', tokens: 'attention' };

export interface BuildOptions {
  /** Report stages ("loading data", "loading backbone") to the CLI. */
  onStage?: (stage: string) => void;
  /** Skip user plugins already loaded into the container. */
  pluginsLoaded?: boolean;
}

/**
 * config → container-resolved pipeline: Dataset · Backbone · FeatureSpace · Masker. Unknown plugin names are
 * UserErrors naming the key path and the known names.
 */
export async function buildPipeline(container: Container, loaded: LoadedConfig, options: BuildOptions = {}): Promise<Pipeline> {
  const { config, baseDir } = loaded;
  if (!options.pluginsLoaded && config.plugins.length) await loadPlugins(container, config.plugins, baseDir);
  const seed = config.train.seed;
  const rng = new Rng(seed);

  // resolve every name first (one aggregated error), so that a typo fails before any slow loading
  const problems: UserError[] = [];
  const attempt = <T>(fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (e) {
      if (e instanceof UserError) problems.push(e);
      else throw e;
      return undefined;
    }
  };
  const loader = attempt(() => resolvePlugin<DataLoader>(container, 'dataset', config.data.use, 'data.use'));
  const backboneFactory = attempt(() => resolvePlugin<BackboneFactory>(container, 'backbone', config.backbone.use, 'backbone.use'));
  const spaceFactory = attempt(() => resolvePlugin<FeatureSpaceFactory>(container, 'features', config.features.use, 'features.use'));
  const maskerName = config.features.masker?.use ?? DEFAULT_MASKER[config.features.use] ?? 'zero';
  const maskerFactory = attempt(() => resolvePlugin<MaskerFactory>(container, 'masker', maskerName, 'features.masker.use'));
  const modelName = config.model.use;
  if (modelName !== 'none') attempt(() => resolvePlugin(container, 'model', modelName, 'model.use'));
  for (const slot of ['generator', 'selector'] as const) {
    const name = config.model[slot];
    if (typeof name === 'string') attempt(() => resolvePlugin(container, slot, name, `model.${slot}`));
  }
  if (problems.length === 1) throw problems[0];
  if (problems.length > 1) {
    throw new UserError(problems.map((p) => `${p.message}\n    fix: ${p.fix}`).join('\n  '), 'fix each plugin name above (sop plugins lists them all)');
  }
  if (!loader || !backboneFactory || !spaceFactory || !maskerFactory) throw new UserError('unresolved plugins');

  options.onStage?.(`loading data (${config.data.use})`);
  const dataset: Dataset = await loader.load({ ...config.data, baseDir, seed, task: config.task });
  if (config.data.shape !== undefined) reshapeRows(dataset, config.data.shape);
  if (config.data.scale !== undefined) scaleRows(dataset, config.data.scale);
  if (typeof config.data.modality === 'string') {
    if (!['tabular', 'image', 'text', 'map'].includes(config.data.modality)) {
      throw new UserError(`data.modality: expected tabular, image, text or map, found '${config.data.modality}'`, 'e.g. data: {modality: image}');
    }
    dataset.modality = config.data.modality as Dataset['modality'];
  } else if (dataset.modality === 'tabular' && dataset.train.inputs.x.shape.length === 4) dataset.modality = 'image';
  if (dataset.task !== config.task) {
    throw new UserError(`task: the config says '${config.task}' but the data set '${dataset.name}' is '${dataset.task}'`, `set task: ${dataset.task}`);
  }
  options.onStage?.(`loading backbone (${config.backbone.use})`);
  const backbone = await backboneFactory.create(
    { ...config.backbone, baseDir },
    { inputShape: dataset.train.inputs.x.shape.slice(1), numOutputs: dataset.numOutputs, seed },
  );
  if (backbone.encode && (dataset.train.texts || dataset.modality === 'image')) {
    for (const split of [dataset.train, dataset.test]) {
      const enc = await backbone.encode(split);
      split.inputs = enc.inputs;
      if (enc.featureMasks) split.featureMasks = enc.featureMasks;
    }
  }
  const { use: _u, masker: _m, ...spaceOptions } = config.features;
  const space = spaceFactory.create(spaceOptions, dataset.train.inputs);
  const maskerOptions = { ...(config.features.masker ?? {}), use: maskerName, reference: dataset.train.inputs };
  const masker = maskerFactory.create(maskerOptions);
  const resolve = <T>(slot: Slot, name: string, where?: string): T => resolvePlugin<T>(container, slot, name, where);
  return { config, baseDir, rng, dataset, space, masker, backbone, resolve };
}

/** `data: {shape: [1, 8, 8]}` reshapes each example (e.g. flat digits rows into images for a CNN). */
function reshapeRows(dataset: Dataset, shape: unknown): void {
  if (!Array.isArray(shape) || !shape.every((v) => Number.isInteger(v) && v > 0)) {
    throw new UserError(`data.shape: expected a list of positive integers (one example's shape), found ${JSON.stringify(shape)}`, 'e.g. data: {shape: [1, 8, 8]}');
  }
  for (const split of [dataset.train, dataset.test]) {
    const x = split.inputs.x;
    const row = x.data.length / Math.max(1, x.shape[0]);
    const want = (shape as number[]).reduce((a, b) => a * b, 1);
    if (row !== want) {
      throw new UserError(`data.shape: [${shape.join(', ')}] holds ${want} values but each example has ${row}`, `use a shape whose product is ${row}`);
    }
    split.inputs = { ...split.inputs, x: { data: x.data, shape: [x.shape[0], ...(shape as number[])] } };
  }
}

/** `data: {scale: 0.0625}` multiplies every input value (e.g. digits' 0–16 pixels into [0, 1]). */
function scaleRows(dataset: Dataset, scale: unknown): void {
  if (typeof scale !== 'number' || !Number.isFinite(scale) || scale === 0) {
    throw new UserError(`data.scale: expected a non-zero number, found ${JSON.stringify(scale)}`, 'e.g. data: {scale: 0.0625}');
  }
  for (const split of [dataset.train, dataset.test]) {
    const x = split.inputs.x;
    if (!(x.data instanceof Float32Array)) throw new UserError('data.scale: the inputs are integer token ids', 'drop data.scale for text data');
    const data = new Float32Array(x.data.length);
    for (let i = 0; i < data.length; i++) data[i] = x.data[i] * scale;
    split.inputs = { ...split.inputs, x: { data, shape: x.shape } };
  }
}
