import type { Backbone } from '../backbone.js';
import type { Dataset } from '../dataset.js';
import type { FeatureSpace } from '../feature-space.js';
import type { Masker } from '../masker.js';
import type { Rng } from '../rng.js';
import type { SopConfig } from './types.js';
import type { Slot } from '../di/tokens.js';

/**
 * A resolved pipeline: every plugin the config names, constructed. Built by the CLI from a config file (or a run
 * directory's saved config), consumed by training, explanation and evaluation.
 */
export interface Pipeline {
  config: SopConfig;
  /** Folder relative paths in the config are resolved against. */
  baseDir: string;
  rng: Rng;
  dataset: Dataset;
  space: FeatureSpace;
  masker: Masker;
  backbone: Backbone;
  /** Resolve another plugin by slot and name from the same registry (e.g. SOP's `model.generator`). */
  resolve?<T>(slot: Slot, name: string, where?: string): T;
}
