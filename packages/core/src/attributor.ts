import type { Backbone } from './backbone.js';
import type { FeatureSpace } from './feature-space.js';
import type { Inputs } from './inputs.js';
import type { Masker } from './masker.js';
import type { Rng } from './rng.js';

export type Target = 'predicted' | 'label' | number | number[];
export type BaselineKind = 'zeros' | 'mean' | 'blur';

export interface AttributeOptions {
  /** Class to explain per example (default 'predicted'). 'label' needs `labels`. */
  target?: Target;
  labels?: Float32Array;
  /** Model evaluations (samples, steps) per explanation; default 20 (SOP's budget). */
  budget?: number;
  baseline?: BaselineKind;
  seed?: number;
  /** Rows per backbone call; chosen automatically when unset. */
  maxBatch?: number;
  /** Progress callback: done/total explanations. */
  onProgress?: (done: number, total: number) => void;
  /** Method-specific options (e.g. `layer` for gradcam, `kernelWidth` for lime). */
  [key: string]: unknown;
}

/** A group of features with a weight, for methods that produce groups (SOP, Archipelago). */
export interface FeatureGroup {
  features: number[];
  weight: number;
}

export interface Attribution {
  /** Per-feature values [B, d] for `targets`. */
  values: Float32Array;
  /** Number of features d. */
  numFeatures: number;
  /** The class explained per example. */
  targets: Int32Array;
  groups?: FeatureGroup[][];
  meta: {
    method: string;
    /** Backbone rows evaluated (forward) for the whole batch. */
    evaluations: number;
    /** Backward passes (vjp rows) for the whole batch. */
    gradients?: number;
    [key: string]: unknown;
  };
}

/** Everything an attributor may use. Usable without the container: construct it directly. */
export interface AttributionContext {
  backbone: Backbone;
  space: FeatureSpace;
  masker: Masker;
  /** Training data, for mean baselines. */
  reference?: Inputs;
  rng?: Rng;
}

/** A post-hoc (or self-explaining) attribution method. One verb: attribute. */
export interface Attributor {
  readonly name: string;
  /** black-box: forwards only; gradient: needs backbone.vjp; self: needs special backbone outputs. */
  readonly access: 'black-box' | 'gradient' | 'self';
  attribute(inputs: Inputs, context: AttributionContext, options?: AttributeOptions): Promise<Attribution>;
}
