import type { Inputs } from './inputs.js';

export type Task = 'classification' | 'regression';
export type Modality = 'tabular' | 'image' | 'text' | 'map';

/**
 * A loaded data set, already split. Numeric data is held as `Inputs` (x plus aux). Text data additionally keeps the
 * raw strings (`texts`, `textPairs`) so that a tokenizer-owning backbone can encode them into `inputs`.
 */
export interface DatasetSplit {
  inputs: Inputs;
  /** classification: class index per row; regression: [N, outputs] row-major. */
  labels: Float32Array;
  /** Ground-truth relevant region per example, at feature level [N, d] (0/1), when known. */
  featureMasks?: Float32Array;
  /** Ground-truth relevant region per example at input level (e.g. object mask [N, H, W]), when known. */
  inputMasks?: { data: Float32Array; shape: number[] };
  texts?: string[];
  textPairs?: string[];
  /** Character spans [start, end) of the rationale in each text. */
  rationales?: Array<Array<[number, number]>>;
}

export interface Dataset {
  name: string;
  task: Task;
  modality: Modality;
  /** Number of classes (classification) or outputs (regression). */
  numOutputs: number;
  classNames?: string[];
  /** Column names (tabular) — used for rankings. */
  featureNames?: string[];
  /** For synthetic data: indices of the truly relevant features (global ground truth). */
  relevantFeatures?: number[];
  /** For group-product data: the true groups of interacting features. */
  trueGroups?: number[][];
  train: DatasetSplit;
  test: DatasetSplit;
  /** Free-form provenance (file paths, generator seed, licence). */
  meta?: Record<string, unknown>;
}

/** Options every data loader receives: the `data:` block of the config, plus the config file's directory. */
export interface DataLoaderOptions {
  [key: string]: unknown;
  use: string;
  baseDir: string;
  seed: number;
  task?: Task;
}

/** A data-set plugin (`data: {use: NAME}`). */
export interface DataLoader {
  readonly name: string;
  load(options: DataLoaderOptions): Promise<Dataset>;
}
