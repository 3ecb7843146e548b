/**
 * LIME (Ribeiro et al. 2016), as `lime_image` runs it: `budget` binary feature masks (the first is the unmasked input,
 * the rest keep each feature with probability 0.5), cosine distance to the all-ones mask, exponential kernel
 * sqrt(exp(−dist²/width²)) with width `kernelWidth` (0.25), weighted ridge (α = `alpha`, 1) with an intercept. Returns
 * the coefficients. Score: `output` 'prob' (default, lime's classifier_fn) or 'logit'.
 */
import type { AttributeOptions, Attribution, AttributionContext, Attributor, Inputs } from '@sop/core';
import { BatchRunner, scorePerturbations } from '../batching.js';
import { baselineMasker, budgetOf, finish, numberOption, rngOf, scoreModeOf } from '../common.js';
import { weightedRidge } from '../linalg.js';

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
    const rng = rngOf(context, options);
    const masks = new Float32Array(B * N * d);
    for (let b = 0; b < B; b++) {
      const base = b * N * d;
      masks.fill(1, base, base + d);
      for (let s = 1; s < N; s++) for (let j = 0; j < d; j++) masks[base + s * d + j] = rng.next() < 0.5 ? 1 : 0;
    }
    const { outputs: out, numOutputs: C, targets, scores: y, rows } = await scorePerturbations(runner, inputs, masks, N, options, mode);
    const values = new Float32Array(B * d);
    const X = new Float64Array(N * d);
    const w = new Float64Array(N);
    const ys = new Float64Array(N);
    for (let b = 0; b < B; b++) {
      for (let s = 0; s < N; s++) {
        let k = 0;
        for (let j = 0; j < d; j++) {
          const v = masks[(b * N + s) * d + j];
          X[s * d + j] = v;
          k += v;
        }
        const dist = k === 0 ? 1 : 1 - Math.sqrt(k / d);
        w[s] = Math.sqrt(Math.exp(-(dist * dist) / (width * width)));
        ys[s] = y[b * N + s];
      }
      const { coef, intercept } = weightedRidge(X, ys, w, N, d, alpha);
      for (let j = 0; j < d; j++) values[b * d + j] = coef[j];
      void intercept;
    }
    return finish('lime', values, d, targets, runner, options, { samples: N, kernelWidth: width, alpha, output: mode });
  },
};
