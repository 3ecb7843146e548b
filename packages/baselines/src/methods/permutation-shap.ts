/**
 * Permutation SHAP with antithetic permutations (shap's PermutationExplainer): each random permutation π is run
 * forward and reversed; along each, features are added one at a time and each gets its marginal contribution.
 * Cost per antithetic pair: 2(d − 1) rows, plus f(x) and f(∅) once. Pairs = max(1, ⌊(budget − 2) / (2(d − 1))⌋), so
 * a budget below 2d still runs one pair (meta.evaluations reports the true cost). Exact for functions with at most
 * pairwise interactions (one pair suffices); converges to the Shapley values as the budget grows.
 */
import type { AttributeOptions, Attribution, AttributionContext, Attributor, Inputs } from '@sop/core';
import { BatchRunner, scorePerturbations } from '../batching.js';
import { baselineMasker, budgetOf, finish, rngOf, scoreModeOf } from '../common.js';

export const permutationShap: Attributor = {
  name: 'permutation-shap',
  access: 'black-box',
  async attribute(inputs: Inputs, context: AttributionContext, options: AttributeOptions = {}): Promise<Attribution> {
    const masker = baselineMasker(context, options);
    const runner = new BatchRunner(context, inputs, options, masker);
    const d = context.space.numFeatures;
    const B = inputs.x.shape[0];
    const budget = budgetOf(options);
    const mode = scoreModeOf(options, 'logit');
    const rng = rngOf(context, options);
    const inner = Math.max(0, d - 1);
    const pairs = inner === 0 ? 0 : Math.max(1, Math.floor((budget - 2) / (2 * inner)));
    const perms: Int32Array[] = [];
    for (let p = 0; p < pairs; p++) {
      const pi = rng.permutation(d);
      perms.push(pi, pi.slice().reverse());
    }
    const per = 2 + perms.length * inner;
    const masks = new Float32Array(B * per * d);
    const one = new Float32Array(per * d);
    one.fill(1, 0, d);
    perms.forEach((pi, q) => {
      for (let k = 1; k <= inner; k++) {
        const row = 2 + q * inner + (k - 1);
        for (let t = 0; t < k; t++) one[row * d + pi[t]] = 1;
      }
    });
    for (let b = 0; b < B; b++) masks.set(one, b * per * d);
    const { outputs: out, numOutputs: C, targets, scores: f, rows } = await scorePerturbations(runner, inputs, masks, per, options, mode);
    const values = new Float32Array(B * d);
    for (let b = 0; b < B; b++) {
      const base = b * per;
      if (d === 1) {
        values[b] = f[base] - f[base + 1];
        continue;
      }
      const phi = new Float64Array(d);
      perms.forEach((pi, q) => {
        let prev = f[base + 1];
        for (let k = 1; k <= d; k++) {
          const cur = k === d ? f[base] : f[base + 2 + q * inner + (k - 1)];
          phi[pi[k - 1]] += cur - prev;
          prev = cur;
        }
      });
      for (let j = 0; j < d; j++) values[b * d + j] = phi[j] / perms.length;
    }
    return finish('permutation-shap', values, d, targets, runner, options, { permutations: perms.length, output: mode });
  },
};
