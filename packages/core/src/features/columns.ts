import type { FeatureSpace, FeatureSpaceFactory } from '../feature-space.js';
import type { Inputs } from '../inputs.js';
import { UserError } from '../errors.js';
import type { FloatTensor } from '../tensor.js';
import { checkAttribution, checkMasks, checkRowShape, floatValues, optNames } from './common.js';

/**
 * One feature per value of a row: x [B, d] (or any [B, ...] row, flattened row-major). Feature masks are input masks;
 * expand/aggregate are copies. featureValues [B, d, 1] = the values themselves. grid: [d], or the row shape when rows
 * are 2-D ([B, H, W] maps).
 */
export class ColumnsSpace implements FeatureSpace {
  readonly kind = 'columns' as const;
  readonly numFeatures: number;
  readonly grid: number[];
  private readonly names?: string[];

  constructor(readonly rowShape: number[], names?: string[]) {
    if (rowShape.length === 0) throw new UserError('features (columns): x must be [B, d] (found rows without features)', 'use a table-shaped input');
    this.numFeatures = rowShape.reduce((a, b) => a * b, 1);
    this.grid = rowShape.length === 2 ? [...rowShape] : [this.numFeatures];
    if (names && names.length !== this.numFeatures) throw new UserError(`features (columns): ${names.length} names for ${this.numFeatures} columns`, 'give one name per column');
    this.names = names;
  }

  featureNames(): string[] {
    return this.names ? [...this.names] : Array.from({ length: this.numFeatures }, (_, i) => `f${i}`);
  }

  expand(masks: Float32Array, rows: ArrayLike<number>, inputs: Inputs): FloatTensor {
    checkRowShape(inputs, this.rowShape, 'columns');
    checkMasks(masks, rows, this.numFeatures, inputs.x.shape[0], 'columns');
    return { data: masks.slice(), shape: [rows.length, ...this.rowShape] };
  }

  aggregate(attribution: FloatTensor, inputs: Inputs): FloatTensor {
    checkAttribution(attribution, inputs, 'columns');
    return { data: attribution.data.slice(), shape: [attribution.shape[0], this.numFeatures] };
  }

  featureValues(inputs: Inputs): FloatTensor {
    checkRowShape(inputs, this.rowShape, 'columns');
    return { data: floatValues(inputs.x).slice(), shape: [inputs.x.shape[0], this.numFeatures, 1] };
  }

  private identity?: Int32Array;

  /** See {@link FeatureSpace.featureValueIndex}: the identity (undefined if featureValues is overridden). */
  featureValueIndex(inputs: Inputs): Int32Array | undefined {
    if (this.featureValues !== ColumnsSpace.prototype.featureValues || !(inputs.x.data instanceof Float32Array)) return undefined;
    checkRowShape(inputs, this.rowShape, 'columns');
    return (this.identity ??= Int32Array.from({ length: this.numFeatures }, (_, i) => i));
  }
}

/** `features: {use: columns, names?}`. Names default to f0.. (the pipeline may pass the data set's featureNames). */
export const columnsFeatures: FeatureSpaceFactory = {
  name: 'columns',
  create(options: Record<string, unknown>, sample: Inputs): FeatureSpace {
    const rowShape = sample.x.shape.slice(1);
    if (rowShape.length === 0) throw new UserError('features (columns): x is [B] with no feature axis', 'reshape the data to [B, d]');
    const d = rowShape.reduce((a, b) => a * b, 1);
    return new ColumnsSpace(rowShape, optNames(options, d));
  },
};
