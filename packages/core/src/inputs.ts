import { sliceRows, takeRows, type TensorData } from './tensor.js';

/**
 * A batch of model inputs, batch-first. `x` is the primary input whose features are explained (pixels [B,C,H,W],
 * table rows [B,d], token ids [B,L] as int64). Other keys are auxiliary inputs that travel with it row for row:
 * `attention_mask`, `token_type_ids` (text), `segments` (int labels [B,H,W] for the segments feature space), or any
 * extra graph input a backbone needs.
 */
export interface Inputs {
  x: TensorData;
  [aux: string]: TensorData;
}

/** Number of rows in a batch. */
export function batchSize(inputs: Inputs): number {
  return inputs.x.shape[0];
}

/** Rows [start, end) of every input tensor (views, no copy). */
export function sliceInputs(inputs: Inputs, start: number, end: number): Inputs {
  const out: Record<string, TensorData> = {};
  for (const [k, v] of Object.entries(inputs)) out[k] = sliceRows(v, start, end);
  return out as Inputs;
}

/** The first `n` rows (all of them when there are fewer), as views. */
export function firstRows(inputs: Inputs, n: number): Inputs {
  return sliceInputs(inputs, 0, Math.min(n, batchSize(inputs)));
}

/** Rows of every input tensor, picked by index (copy). */
export function takeInputs(inputs: Inputs, rows: ArrayLike<number>): Inputs {
  const out: Record<string, TensorData> = {};
  for (const [k, v] of Object.entries(inputs)) out[k] = takeRows(v, rows);
  return out as Inputs;
}
