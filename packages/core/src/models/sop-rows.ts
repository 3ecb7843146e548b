import type { Inputs } from '../inputs.js';
import { sliceRows, type TensorData } from '../tensor.js';

/** The first `n` rows of every input tensor (views). */
export function firstRows(inputs: Inputs, n: number): Inputs {
  const out: Record<string, TensorData> = {};
  for (const [k, v] of Object.entries(inputs)) out[k] = sliceRows(v, 0, Math.min(n, v.shape[0]));
  return out as Inputs;
}
