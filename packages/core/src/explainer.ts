import type { Inputs } from './inputs.js';
import type { Target } from './attributor.js';

export interface ExplainOptions {
  /** Fraction of features kept per explanation/group (SOP's k, the -F conversion's top fraction). */
  keep: number;
  target?: Target;
  labels?: Float32Array;
  /** Also return g_c (summed attribution per class) for every class [B, C] (fidelity); may cost C× more for post-hoc. */
  allClasses?: boolean;
  /** For insertion/deletion: SOP builds groups from the bottom-k features instead of the top-k. */
  deletion?: boolean;
  budget?: number;
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface Explanation {
  /** The method's own prediction [B, C]: SOP's output; -F: the backbone on the kept features. */
  outputs: Float32Array;
  numOutputs: number;
  /** Per-feature attribution for `targets` [B, d]. */
  attributions: Float32Array;
  numFeatures: number;
  targets: Int32Array;
  /** Features selected at `keep` [B, d] (0/1): the -F mask, or the union of SOP's top groups covering `keep`. */
  featureMasks: Float32Array;
  /** g_c per class [B, C] when `allClasses` was asked. */
  allClassAttributions?: Float32Array;
  /** SOP groups: masks [B, m, d], weights α for the target [B, m], scales c [B, m], per-group outputs [B, m, C]. */
  groups?: { count: number; masks: Float32Array; weights: Float32Array; scales?: Float32Array; outputs?: Float32Array };
  meta: { method: string; evaluations: number; [key: string]: unknown };
}

/**
 * Anything `sop evaluate` can score as a predictor with an explanation: SOP (faithful by construction) or a post-hoc
 * attributor turned faithful by the -F conversion.
 */
export interface FaithfulExplainer {
  readonly name: string;
  /** true when outputs equal the sum of attributions by construction (SOP, FRESH-style) */
  readonly faithfulByConstruction: boolean;
  explain(inputs: Inputs, options: ExplainOptions): Promise<Explanation>;
}
