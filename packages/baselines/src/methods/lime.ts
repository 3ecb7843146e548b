/**
 * LIME (Ribeiro et al. 2016), as `lime_image` runs it: `budget` binary feature masks (the first is the unmasked input,
 * the rest keep each feature with probability 0.5; one set of masks is shared by the batch's examples, so an example's
 * explanation does not depend on the rest of its batch), cosine distance to the all-ones mask, exponential kernel
 * sqrt(exp(−dist²/width²)) with width `kernelWidth` (0.25), weighted ridge (α = `alpha`, 1) with an intercept. Returns
 * the coefficients. Score: `output` 'prob' (default, lime's classifier_fn) or 'logit'.
 */
import type { AttributeOptions, Attribution, AttributionContext, Attributor, Inputs, Rng } from '@sop/core';
import { BatchRunner, scorePerturbations } from '../batching.js';
import { baselineMasker, budgetOf, finish, numberOption, scoreModeOf, seededDesign } from '../common.js';
import { RidgeWorkspace } from '../linalg.js';

/** LIME's sample design [N, d] for one batch and the weighted ridge prepared (factored) on it. */
function limeDesign(d: number, N: number, width: number, alpha: number, rng: Rng): { design: Float32Array; ridge: RidgeWorkspace } {
  // the kernel weight depends on a row's count of ones only
  const kernel = new Float64Array(d + 1);
  for (let k = 0; k <= d; k++) {
    const dist = k === 0 ? 1 : 1 - Math.sqrt(k / d);
    kernel[k] = Math.sqrt(Math.exp(-(dist * dist) / (width * width)));
  }
  const design = new Float32Array(N * d);
  const w = new Float64Array(N);
  design.fill(1, 0, d);
  w[0] = kernel[d];
  for (let s = 1; s < N; s++) {
    const o = s * d;
    let k = 0;
    for (let j = 0; j < d; j++) {
      if (rng.nextU32() < 0x80000000) {
        design[o + j] = 1;
        k++;
      }
    }
    w[s] = kernel[k];
  }
  const ridge = new RidgeWorkspace(d);
  ridge.prepare(design, 0, N, w, 0, alpha);
  return { design, ridge };
}

export const lime: Attributor = {
  name: 'lime',
  access: 'black-box',
  async attribute(inputs: Inputs, context: AttributionContext, options: AttributeOptions = {}): Promise<Attribution> {
    const masker = baselineMasker(context, options);
    const runner = new BatchRunner(context, inputs, options, masker);
    const d = context.space.numFeatures;
    const B = inputs.x.shape[0];
    const N = budgetOf(options);
    const width = numberOption(options, 'kernelWidth', 0.25, (v) => v > 0, 'a positive number');
    const alpha = numberOption(options, 'alpha', 1, (v) => v >= 0, 'a non-negative number');
    const mode = scoreModeOf(options, 'prob');
    // one design for the batch (as KernelSHAP's coalitions and RISE's masks): N mask rows [N, d], row 0 the unmasked
    // input, the rest Bernoulli(0.5) (rng.next() < 0.5, i.e. the top bit of the draw is 0). Each example's explanation
    // is LIME on these N samples (the same explanation it gets alone with the same seed). The design, its kernel
    // weights and the factored weighted normal matrix depend on (d, N, width, α, seed) only.
    const { design, ridge } = seededDesign('lime', context, options, `${d}|${N}|${width}|${alpha}`, (rng) => limeDesign(d, N, width, alpha, rng));
    const masks = new Float32Array(B * N * d);
    for (let b = 0; b < B; b++) masks.set(design, b * N * d);
    const { targets, scores: y } = await scorePerturbations(runner, inputs, masks, N, options, mode);
    const values = new Float32Array(B * d);
    // solve() touches only the workspace's right-hand side buffers, in this synchronous stretch (no await after it)
    for (let b = 0; b < B; b++) ridge.solve(y, b * N, values, b * d);
    return finish('lime', values, d, targets, runner, options, { samples: N, kernelWidth: width, alpha, output: mode });
  },
};
