import { UserError } from '../errors.js';
import type { PluginBlock, SopConfig } from './types.js';

/** One validation problem: key path, what was expected, what was found. */
export interface ConfigIssue {
  path: string;
  expected: string;
  found: unknown;
}

export class ConfigError extends UserError {
  constructor(readonly issues: ConfigIssue[], source?: string) {
    super(
      `invalid config${source ? ` ${source}` : ''}:\n` +
        issues.map((i) => `  - ${i.path}: expected ${i.expected}, found ${describe(i.found)}`).join('\n'),
      'edit the config file (or the --set override) at the key paths above; see README "Config" for every key',
    );
  }
}

export function describe(v: unknown): string {
  if (v === undefined) return 'nothing (missing)';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `a list ${JSON.stringify(v).slice(0, 60)}`;
  if (typeof v === 'object') return `an object ${JSON.stringify(v).slice(0, 60)}`;
  return `${typeof v} ${JSON.stringify(v)}`;
}

type Check = (v: unknown) => boolean;
const isStr: Check = (v) => typeof v === 'string' && v.length > 0;
const isPosInt: Check = (v) => typeof v === 'number' && Number.isInteger(v) && v > 0;
const isNonNegInt: Check = (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const isPosNum: Check = (v) => typeof v === 'number' && Number.isFinite(v) && v > 0;
const isNonNegNum: Check = (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const isFraction: Check = (v) => typeof v === 'number' && v > 0 && v < 1;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const TOP_KEYS = ['name', 'task', 'plugins', 'data', 'features', 'backbone', 'model', 'train', 'evaluate'];

const TRAIN_KEYS: Record<string, [Check, string]> = {
  epochs: [isPosNum, 'a positive number of epochs'],
  steps: [isPosInt, 'a positive integer number of steps'],
  batchSize: [isPosInt, 'a positive integer'],
  lr: [isPosNum, 'a positive number (learning rate)'],
  seed: [isNonNegInt, 'a non-negative integer'],
  weightDecay: [isNonNegNum, 'a non-negative number'],
  schedule: [(v) => ['warmup-inverse-sqrt', 'cosine', 'constant'].includes(v as string), "one of 'warmup-inverse-sqrt', 'cosine', 'constant'"],
  warmup: [isNonNegInt, 'a non-negative integer number of steps'],
  clipGradNorm: [isPosNum, 'a positive number'],
  validateEvery: [isPosInt, 'a positive integer number of steps'],
  earlyStopping: [isNonNegInt, 'a non-negative integer (validations without improvement; 0 = off)'],
  validationSplit: [(v) => v === 0 || isFraction(v), 'a fraction in [0, 1)'],
  backboneEpochs: [isPosNum, 'a positive number of epochs (fitting an untrained MLP before SOP)'],
  backboneLr: [isPosNum, 'a positive number'],
  maskBatchSize: [isPosInt, 'a positive integer'],
};

const MODEL_KEYS: Record<string, [Check, string]> = {
  groups: [isPosInt, 'a positive integer number of groups m'],
  keep: [(v) => typeof v === 'number' && v > 0 && v <= 1, 'a fraction in (0, 1]'],
  heads: [isPosInt, 'a positive integer'],
  maskBatchSize: [isPosInt, 'a positive integer'],
};

/** Validate a parsed config object; fills defaults; throws ConfigError listing every problem. */
export function validateConfig(raw: unknown, source?: string): SopConfig {
  const issues: ConfigIssue[] = [];
  if (!isObj(raw)) throw new ConfigError([{ path: '(root)', expected: 'a mapping of keys (name, task, data, ...)', found: raw }], source);
  for (const k of Object.keys(raw)) {
    if (!TOP_KEYS.includes(k)) issues.push({ path: k, expected: `one of the top-level keys ${TOP_KEYS.join(', ')}`, found: raw[k] });
  }
  const name = raw.name ?? 'sop-run';
  if (!isStr(name)) issues.push({ path: 'name', expected: 'a non-empty string', found: raw.name });
  const task = raw.task ?? 'classification';
  if (task !== 'classification' && task !== 'regression') issues.push({ path: 'task', expected: "'classification' or 'regression'", found: raw.task });
  const plugins = raw.plugins ?? [];
  if (!Array.isArray(plugins) || !plugins.every(isStr)) issues.push({ path: 'plugins', expected: 'a list of plugin file paths or package names', found: raw.plugins });

  const block = (key: string, required: boolean, def?: string): PluginBlock | undefined => {
    let v = raw[key];
    if (v === undefined) {
      if (required) {
        issues.push({ path: key, expected: `a block {use: NAME, ...}`, found: undefined });
        return undefined;
      }
      v = def === undefined ? undefined : { use: def };
    }
    if (typeof v === 'string') v = { use: v };
    if (v === undefined) return undefined;
    if (!isObj(v)) {
      issues.push({ path: key, expected: 'a block {use: NAME, ...}', found: v });
      return undefined;
    }
    if (!isStr(v.use)) issues.push({ path: `${key}.use`, expected: 'a plugin name (string)', found: v.use });
    return v as PluginBlock;
  };
  const data = block('data', true);
  const features = block('features', false, 'columns') as SopConfig['features'] | undefined;
  if (features && features.masker !== undefined) {
    if (typeof features.masker === 'string') features.masker = { use: features.masker };
    else if (!isObj(features.masker) || !isStr((features.masker as PluginBlock).use)) {
      issues.push({ path: 'features.masker', expected: 'a masker name or {use: zero|mean|blur|attention, ...}', found: features.masker });
    }
  }
  if (features && features.size !== undefined) {
    const s = features.size;
    const ok = (isPosInt(s)) || (Array.isArray(s) && s.length >= 1 && s.length <= 2 && s.every(isPosInt));
    if (!ok) issues.push({ path: 'features.size', expected: 'a patch size [h, w] of positive integers', found: s });
  }
  const backbone = block('backbone', true);
  const model = block('model', false, 'sop');
  if (model) {
    for (const [k, [check, what]] of Object.entries(MODEL_KEYS)) {
      if (model[k] !== undefined && !check(model[k])) issues.push({ path: `model.${k}`, expected: what, found: model[k] });
    }
  }

  const trainRaw = raw.train ?? {};
  const train: Record<string, unknown> = {};
  if (!isObj(trainRaw)) issues.push({ path: 'train', expected: 'a mapping {epochs, batchSize, lr, seed, ...}', found: trainRaw });
  else {
    for (const [k, v] of Object.entries(trainRaw)) {
      const rule = TRAIN_KEYS[k];
      if (!rule) {
        issues.push({ path: `train.${k}`, expected: `one of ${Object.keys(TRAIN_KEYS).join(', ')}`, found: v });
        continue;
      }
      if (!rule[0](v)) issues.push({ path: `train.${k}`, expected: rule[1], found: v });
      train[k] = v;
    }
  }
  train.batchSize ??= 16;
  train.lr ??= 1e-3;
  train.seed ??= 0;
  if (train.epochs === undefined && train.steps === undefined) train.epochs = 3;

  let evaluate: SopConfig['evaluate'];
  if (raw.evaluate !== undefined) {
    if (!isObj(raw.evaluate)) issues.push({ path: 'evaluate', expected: 'a mapping {methods, metrics, limit, budget, keep}', found: raw.evaluate });
    else {
      const e = raw.evaluate;
      for (const k of ['methods', 'metrics']) {
        if (e[k] !== undefined && !(Array.isArray(e[k]) && (e[k] as unknown[]).every(isStr))) issues.push({ path: `evaluate.${k}`, expected: 'a list of names', found: e[k] });
      }
      for (const k of ['limit', 'budget']) if (e[k] !== undefined && !isPosInt(e[k])) issues.push({ path: `evaluate.${k}`, expected: 'a positive integer', found: e[k] });
      if (e.keep !== undefined && !(typeof e.keep === 'number' && e.keep > 0 && e.keep <= 1)) issues.push({ path: 'evaluate.keep', expected: 'a fraction in (0, 1]', found: e.keep });
      evaluate = e as SopConfig['evaluate'];
    }
  }
  if (issues.length) throw new ConfigError(issues, source);
  return {
    name: name as string,
    task: task as SopConfig['task'],
    plugins: plugins as string[],
    data: data!,
    features: features!,
    backbone: backbone!,
    model: model!,
    train: train as unknown as SopConfig['train'],
    ...(evaluate ? { evaluate } : {}),
  };
}
