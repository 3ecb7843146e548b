import type { Inputs } from './inputs.js';
import type { FloatTensor, TensorData } from './tensor.js';

export type FeatureSpaceKind = 'columns' | 'patches' | 'tokens' | 'segments';

/**
 * How one input splits into d features, and how a feature mask [d] becomes an input mask. The only place that knows
 * the input's geometry: SOP, every attributor and every metric speak in features.
 */
export interface FeatureSpace {
  readonly kind: FeatureSpaceKind;
  /** Number of features d per example. */
  readonly numFeatures: number;
  /** Feature layout for blurs and position embeddings: [d] (1-D) or [gh, gw] (2-D grid, gh*gw = d). */
  readonly grid: number[];
  /** Human-readable feature names (column names, "patch r,c", token position). */
  featureNames(): string[];
  /**
   * Expand feature masks to input-level masks shaped like one row of `inputs.x` (without the batch axis).
   * `masks` is [R, d] row-major; row r belongs to example `rows[r]` of `inputs` (needed where geometry differs per
   * example, e.g. segments). Returns [R, ...x.shape.slice(1)].
   */
  expand(masks: Float32Array, rows: ArrayLike<number>, inputs: Inputs): FloatTensor;
  /** Sum an input-level attribution [B, ...x.shape.slice(1)] into per-feature values [B, d]. */
  aggregate(attribution: FloatTensor, inputs: Inputs): FloatTensor;
  /** Raw values of each feature, for the SOP generator's embeddings: [B, d, p] (p values per feature). */
  featureValues(inputs: Inputs): FloatTensor;
  /**
   * Optional: featureValues as a gather from float rows of x, for the generator's WebAssembly path: index [d·p], where
   * featureValues(inputs)[b, t] = index[t] ≥ 0 ? x[b, index[t]] (x's row flattened) : 0. Undefined when
   * featureValues is not such a gather (or is overridden); x must then be float32 for the index to be used.
   */
  featureValueIndex?(inputs: Inputs): Int32Array | undefined;
  /** Which features exist for each example ([B, d], 1 = real, 0 = padding). Defaults to all ones. */
  validFeatures?(inputs: Inputs): Float32Array;
}

/** Factory for a feature space (`features: {use: NAME, ...}`), bound to a sample of the data's inputs. */
export interface FeatureSpaceFactory {
  readonly name: FeatureSpaceKind | string;
  create(options: Record<string, unknown>, sample: Inputs): FeatureSpace;
}

export type { TensorData };
