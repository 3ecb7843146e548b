import type { Backbone } from './backbone.js';
import type { FeatureSpace } from './feature-space.js';
import type { Inputs } from './inputs.js';
import type { Rng } from './rng.js';
import type { Tensor } from './autograd/tensor.js';

/** What a group generator proposes for a batch: m candidate groups per example. */
export interface GeneratedGroups {
  /** Attention of each group's query over the features, a [B, m, d]; absent when the caller passed `attention: false`. */
  attention?: Tensor;
  /** Binary group masks M [B, m, d]: the top ⌊keep·d⌋ features of each row of `attention` (no gradient). */
  masks: Tensor;
  /** Scale c = Σ_top a − Σ_rest a = 2·Σ_top a − 1 [B, m]: the gradient path into the generator (methods §9.1). */
  scales: Tensor;
  /** Query feature of each group [m] and the head it came from [m]. */
  queries: Int32Array;
  heads: Int32Array;
}

export interface GenerateOptions {
  /** Number of groups m. */
  groups: number;
  /** Fraction of features per group (changeable at inference). */
  keep: number;
  /** Groups from the bottom-k features instead (deletion curves). */
  deletion?: boolean;
  /** Training: only this head; omitted: all heads stacked (inference). */
  head?: number;
  rng?: Rng;
  /** Record an autograd graph (training). Default false. */
  grad?: boolean;
  /** Also return the attention values (default true); SOP's inference needs only masks and scales and passes false. */
  attention?: boolean;
}

/**
 * SOP's trainable group generator (methods §2.1): attention over per-feature embeddings, binarised by top-k into m
 * feature groups. Parameters are autograd tensors trained by SOP's optimiser; the backbone stays frozen.
 */
export interface GroupGenerator {
  readonly name: string;
  /** Trainable parameters by name (saved in checkpoints under `generator.<name>`). */
  parameters(): Record<string, Tensor>;
  generate(inputs: Inputs, options: GenerateOptions): Promise<GeneratedGroups>;
}

export interface GroupComponentContext {
  backbone: Backbone;
  space: FeatureSpace;
  numOutputs: number;
  /** A few example inputs, to size projections. */
  sample: Inputs;
  rng: Rng;
}

/** DI slot 'generator' (`model: {use: sop, generator: NAME}`); built-in: `attention`. */
export interface GroupGeneratorFactory {
  readonly name: string;
  create(context: GroupComponentContext, options: Record<string, unknown>): GroupGenerator;
}
