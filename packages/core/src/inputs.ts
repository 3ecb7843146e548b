import type { TensorData } from './tensor.js';

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
