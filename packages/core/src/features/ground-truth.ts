import type { FeatureSpace } from '../feature-space.js';
import type { Inputs } from '../inputs.js';
import { UserError } from '../errors.js';

/**
 * Feature-level ground truth from input-level masks (e.g. object masks [N, H, W] → patch masks [N, d]): the fraction
 * of each feature's input elements inside the mask (aggregate(mask) / aggregate(1), the mask broadcast over the
 * channels of x), then 1 where the fraction ≥ `threshold` (default 0.5) — or the fractions themselves with
 * `threshold: null`. `inputMask` holds one value per element of a row of x without its channel axis ([H, W] for
 * x rows [C, H, W]) or exactly a row of x.
 */
export function inputMasksToFeatures(
  space: FeatureSpace,
  inputs: Inputs,
  inputMask: { data: Float32Array; shape: number[] },
  threshold: number | null = 0.5,
): Float32Array {
  const B = inputs.x.shape[0];
  const row = inputs.x.data.length / Math.max(1, B);
  const mrow = inputMask.data.length / Math.max(1, inputMask.shape[0]);
  if (inputMask.shape[0] !== B || row % mrow !== 0) {
    throw new UserError(`ground-truth masks shaped [${inputMask.shape.join(', ')}] do not fit inputs shaped [${inputs.x.shape.join(', ')}]`, 'give one mask per example, the size of the image');
  }
  const reps = row / mrow;
  const m = new Float32Array(B * row);
  const ones = new Float32Array(B * row).fill(1);
  for (let b = 0; b < B; b++) {
    const src = inputMask.data.subarray(b * mrow, (b + 1) * mrow);
    for (let c = 0; c < reps; c++) m.set(src, b * row + c * mrow);
  }
  const shape = [...inputs.x.shape];
  const inside = space.aggregate({ data: m, shape }, inputs).data;
  const total = space.aggregate({ data: ones, shape }, inputs).data;
  const out = new Float32Array(inside.length);
  for (let i = 0; i < out.length; i++) {
    const f = total[i] > 0 ? inside[i] / total[i] : 0;
    out[i] = threshold === null ? f : f >= threshold ? 1 : 0;
  }
  return out;
}
