/**
 * Integrated gradients (Sundararajan et al. 2017): (x − x₀) ⊙ ∫₀¹ ∂f_c/∂x(x₀ + α(x − x₀)) dα, with x₀ the masker's
 * baseline (every feature removed: zeros, mean or blur), budget = steps (default 20). `rule`: 'gauss-legendre'
 * (default), 'left', 'middle', 'right' Riemann sums. Completeness: Σ_features ≈ f_c(x) − f_c(x₀).
 * `referenceCompat: true` reproduces exlib: left Riemann sum and the mean gradient without × (x − x₀).
 */
import type { AttributeOptions, Attribution, AttributionContext, Attributor, Inputs } from '@sop/core';
import { BatchRunner, repeatIndex } from '../batching.js';
import { aggregate, baselineInputs, baselineMasker, budgetOf, choiceOption, finish, scoreModeOf } from '../common.js';
import { gradientTargets, repeatTargets, rowSizeOf, withX, xData } from '../gradient-common.js';
import { gaussLegendre01 } from '../linalg.js';

export function integrationRule(rule: string, steps: number): { alphas: Float64Array; weights: Float64Array } {
  if (rule === 'gauss-legendre') {
    const g = gaussLegendre01(steps);
    return { alphas: g.nodes, weights: g.weights };
  }
  const alphas = new Float64Array(steps);
  const weights = new Float64Array(steps).fill(1 / steps);
  const off = rule === 'left' ? 0 : rule === 'right' ? 1 : 0.5;
  for (let k = 0; k < steps; k++) alphas[k] = (k + off) / steps;
  return { alphas, weights };
}

export const integratedGradients: Attributor = {
  name: 'integrated-gradients',
  access: 'gradient',
  async attribute(inputs: Inputs, context: AttributionContext, options: AttributeOptions = {}): Promise<Attribution> {
    const runner = new BatchRunner(context, inputs, options);
    const targets = await gradientTargets('integrated-gradients', runner, inputs, options);
    const compat = options.referenceCompat === true;
    const rule = choiceOption(options, 'rule', ['gauss-legendre', 'left', 'middle', 'right'] as const, compat ? 'left' : 'gauss-legendre');
    const steps = budgetOf(options);
    const mode = scoreModeOf(options, 'logit');
    const B = inputs.x.shape[0];
    const n = rowSizeOf(inputs);
    const x = xData(inputs);
    const x0 = xData(baselineInputs(context, baselineMasker(context, options), inputs));
    const { alphas, weights } = integrationRule(rule, steps);
    // path rows (example-major: b·steps + k) are built per chunk and their gradients summed on the fly
    const rows = repeatIndex(B, steps);
    const source = {
      count: B * steps,
      rowShape: inputs.x.shape.slice(1),
      take: (s: number, e: number): Inputs => {
        const path = new Float32Array((e - s) * n);
        for (let r = s; r < e; r++) {
          const b = rows[r];
          const al = alphas[r % steps];
          const o = (r - s) * n;
          for (let i = 0; i < n; i++) path[o + i] = x0[b * n + i] + al * (x[b * n + i] - x0[b * n + i]);
        }
        return withX(inputs, rows.subarray(s, e), path);
      },
    };
    const attr = new Float32Array(B * n);
    await runner.gradient('integrated-gradients', source, repeatTargets(targets, steps), mode, (s, e, g) => {
      for (let r = s; r < e; r++) {
        const b = rows[r];
        const w = weights[r % steps];
        const o = (r - s) * n;
        for (let i = 0; i < n; i++) attr[b * n + i] += w * g[o + i];
      }
    });
    if (!compat) for (let b = 0; b < B; b++) for (let i = 0; i < n; i++) attr[b * n + i] *= x[b * n + i] - x0[b * n + i];
    const values = aggregate(context, attr, inputs);
    return finish('integrated-gradients', values, context.space.numFeatures, targets, runner, options, { steps, rule, output: mode });
  },
};
