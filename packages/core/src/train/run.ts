import type { TrainingEvent } from '../events.js';
import type { Inputs } from '../inputs.js';
import type { StageSettings } from './trainer.js';

/** One part of the training split (rows already selected). */
export interface SplitPart {
  inputs: Inputs;
  /** classification: [N] class ids; regression: [N * C]. */
  labels: Float32Array;
  rows: number;
}

/** What a model factory gets from {@link trainPipeline}: where to write, how to report, the train/validation parts. */
export interface RunContext {
  outDir: string;
  resume: boolean;
  emit(event: TrainingEvent): void;
  /** Training rows (train split minus the validation hold-out). */
  train: SplitPart;
  /** Held-out validation rows (empty when validationSplit is 0). */
  validation: SplitPart;
  /** Stage settings: `train:` merged with `train.<stage>:`. */
  settings(stage: string): StageSettings;
  /** Names of the input features (for rankings). */
  featureNames: string[];
}
