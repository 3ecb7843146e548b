import type { Inputs } from '../inputs.js';
import { UserError } from '../errors.js';
import { sizeOf, type TensorData } from '../tensor.js';

/** Float view of a tensor's values (int64 converted). */
export function floatValues(t: TensorData): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  const out = new Float32Array(t.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Number(t.data[i]);
  return out;
}

/** Check that `inputs.x` rows have `rowShape`; `space` names the feature space in the error. */
export function checkRowShape(inputs: Inputs, rowShape: readonly number[], space: string): void {
  const got = inputs.x.shape.slice(1);
  if (got.length !== rowShape.length || got.some((s, i) => s !== rowShape[i])) {
    throw new UserError(
      `features (${space}): input rows are shaped [${got.join(', ')}] but the feature space was built for [${rowShape.join(', ')}]`,
      'build the feature space from inputs with the same per-row shape (e.g. resize images to one size)',
    );
  }
}

/** Check masks [R, d] against rows. */
export function checkMasks(masks: Float32Array, rows: ArrayLike<number>, d: number, n: number, space: string): void {
  if (masks.length !== rows.length * d) {
    throw new UserError(`features (${space}): ${masks.length} mask values for ${rows.length} rows × ${d} features`, 'give one mask row of d values per requested row');
  }
  for (let r = 0; r < rows.length; r++) {
    const i = rows[r];
    if (!(Number.isInteger(i) && i >= 0 && i < n)) throw new UserError(`features (${space}): row ${i} is out of range (batch has ${n} rows)`, 'pass row indices of the given inputs');
  }
}

/** Check an attribution is shaped like x ([B, ...row]). */
export function checkAttribution(att: TensorData, inputs: Inputs, space: string): void {
  const want = inputs.x.shape;
  if (att.shape.length !== want.length || att.shape.some((s, i) => s !== want[i])) {
    throw new UserError(`features (${space}): attribution is shaped [${att.shape.join(', ')}], expected [${want.join(', ')}] like x`, 'give an input-level attribution shaped like inputs.x');
  }
}

export function rowSize(shape: readonly number[]): number {
  return sizeOf(shape.slice(1));
}

/** Optional names list option. */
export function optNames(options: Record<string, unknown>, d: number): string[] | undefined {
  const v = options.featureNames ?? options.names;
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length !== d || !v.every((s) => typeof s === 'string')) {
    throw new UserError(`features.names: expected ${d} names, found ${Array.isArray(v) ? `${v.length} entries` : JSON.stringify(v)}`, `give one name per feature (${d})`);
  }
  return v as string[];
}
