import type { Backbone } from '../backbone.js';
import type { Pipeline } from '../config/pipeline.js';
import type { FaithfulExplainer } from '../explainer.js';
import type { Inputs } from '../inputs.js';
import type { FloatTensor } from '../tensor.js';
import type { RunContext } from '../train/run.js';
import type { SopModel } from './sop.js';
import type { ScoresActivation } from './scores-activation.js';

export interface RankedFeature {
  feature: string;
  score: number;
}

/** A trained predictor rebuilt from (or just written to) a run folder. */
export interface TrainedModel {
  /** 'sop' | 'scores-activation' | 'none' (or a plugin's name). */
  kind: string;
  runDir: string;
  backbone: Backbone;
  /** The model's prediction [B, C] (logits or regression outputs). */
  predict(inputs: Inputs): Promise<FloatTensor>;
  /** SOP: the faithful explainer used by `sop explain` / `sop evaluate`. */
  explainer?: FaithfulExplainer;
  /** ScoresActivation: the global feature ranking (argsort w, descending). */
  ranking?(): RankedFeature[];
  sop?: SopModel;
  scores?: ScoresActivation;
  /** Extra test-split metrics the model reports (e.g. SOP's backbone accuracy). */
  extraMetrics?(inputs: Inputs, labels: Float32Array): Promise<Record<string, number>>;
}

/**
 * A model plugin (`model: {use: NAME}`, DI slot 'model'): how to train it into a run folder and how to load it back.
 * Built-ins: sop, scores-activation, none.
 */
export interface ModelFactory {
  readonly name: string;
  readonly description: string;
  /** Train this model's stages (checkpointing into `run.outDir`, resuming when `run.resume`). */
  train(pipeline: Pipeline, run: RunContext): Promise<TrainedModel>;
  /** Rebuild the trained model from a finished run folder. */
  load(runDir: string, pipeline: Pipeline): Promise<TrainedModel>;
}
