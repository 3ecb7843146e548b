import type { FeatureSpace } from './feature-space.js';
import type { Inputs } from './inputs.js';

/**
 * What a removed feature becomes. SOP's group inputs, LIME/SHAP/RISE perturbations, the -F conversion and
 * insertion/deletion all go through a Masker: one definition of "removed".
 */
export interface Masker {
  readonly name: string;
  /**
   * Build R masked copies: row r is example `rows[r]` of `inputs` with feature mask `masks[r]` ([R, d] row-major,
   * 1 = keep, 0 = remove; values in between blend). Returns Inputs with R rows (aux inputs copied/adjusted).
   * `scratch` (optional, float inputs): a buffer the caller reuses between calls; a masker may write the masked x
   * into its first R·row values and return that view instead of allocating (the caller must then be done with the
   * previous result before the next call). Maskers are free to ignore it.
   */
  apply(inputs: Inputs, masks: Float32Array, rows: ArrayLike<number>, space: FeatureSpace, scratch?: Float32Array): Inputs;
}

export interface MaskerOptions {
  [key: string]: unknown;
  use: string;
  /** Mean/baseline statistics come from the training split. */
  reference?: Inputs;
}

/** Factory for a masker (`masker: {use: zero|mean|blur|attention|pad}` in the features block). */
export interface MaskerFactory {
  readonly name: string;
  create(options: MaskerOptions): Masker;
}
