import type { Task } from '../dataset.js';

/** One plugin block: `{use: NAME, ...options}`. */
export interface PluginBlock {
  use: string;
  [key: string]: unknown;
}

/** The pipeline config (JSON or YAML). See README "Config" for every key. */
export interface SopConfig {
  name: string;
  task: Task;
  /** User plugin files or package names. */
  plugins: string[];
  /** e.g. {use: csv, path, label, split} | {use: builtin, name: digits} */
  data: PluginBlock;
  /** {use: columns|patches|tokens|segments, size?: [h, w], masker?: {use: zero|mean|blur|attention|pad}} */
  features: PluginBlock & { masker?: PluginBlock };
  /** {use: onnx|hf|mlp, ...} */
  backbone: PluginBlock;
  /** {use: sop|scores-activation|none, groups?, keep?, ...} */
  model: PluginBlock;
  train: TrainConfig;
  evaluate?: EvaluateConfig;
}

export interface TrainConfig {
  epochs?: number;
  steps?: number;
  batchSize: number;
  lr: number;
  seed: number;
  weightDecay?: number;
  /** 'warmup-inverse-sqrt' (the reference's) | 'cosine' | 'constant' */
  schedule?: string;
  warmup?: number;
  clipGradNorm?: number;
  /** Validate every N steps (default: once per epoch). */
  validateEvery?: number;
  /** Stop after this many validations without improvement (0/absent = off). */
  earlyStopping?: number;
  /** Fraction of the training split held out for validation (default 0.1). */
  validationSplit?: number;
  [key: string]: unknown;
}

export interface EvaluateConfig {
  methods?: string[];
  metrics?: string[];
  limit?: number;
  budget?: number;
  keep?: number;
  [key: string]: unknown;
}
