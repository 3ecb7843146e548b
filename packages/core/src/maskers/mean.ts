import type { Inputs } from '../inputs.js';
import type { Masker, MaskerFactory, MaskerOptions } from '../masker.js';
import { UserError } from '../errors.js';
import { blend } from './common.js';

/** Per-element mean of reference rows [N, ...] → one row. */
export function meanRow(reference: Inputs): Float32Array {
  if (!(reference.x.data instanceof Float32Array)) {
    throw new UserError("masker 'mean' needs float inputs but the reference x is int64 (token ids)", 'use masker: attention for token inputs');
  }
  const n = reference.x.shape[0];
  if (n === 0) throw new UserError("masker 'mean': the reference (training split) is empty", 'use a non-empty training split or masker: zero');
  const row = reference.x.data.length / n;
  const acc = new Float64Array(row);
  const x = reference.x.data;
  for (let i = 0; i < n; i++) for (let j = 0; j < row; j++) acc[j] += x[i * row + j];
  const out = new Float32Array(row);
  for (let j = 0; j < row; j++) out[j] = acc[j] / n;
  return out;
}

/**
 * x̃ = μ + (x − μ) ⊙ M with μ the per-element mean of the training split's x (`options.reference`). Without a
 * reference it falls back to zero masking.
 */
export class MeanMasker implements Masker {
  readonly name = 'mean';
  constructor(readonly mean?: Float32Array) {}

  apply(inputs: Inputs, masks: Float32Array, rows: ArrayLike<number>, space: Parameters<Masker['apply']>[3], scratch?: Float32Array): Inputs {
    const mu = this.mean;
    if (mu) {
      const row = inputs.x.data.length / Math.max(1, inputs.x.shape[0]);
      if (row !== mu.length) {
        throw new UserError(`masker 'mean': input rows have ${row} values but the reference rows have ${mu.length}`, 'build the masker from training inputs shaped like the explained inputs');
      }
    }
    return blend(inputs, masks, rows, space, 'mean', mu ? () => mu : undefined, scratch);
  }
}

/** `masker: {use: mean}`; the pipeline passes the training split as `reference`. */
export const meanMaskerFactory: MaskerFactory = {
  name: 'mean',
  create(options: MaskerOptions): Masker {
    return new MeanMasker(options.reference ? meanRow(options.reference) : undefined);
  },
};
