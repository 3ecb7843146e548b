/**
 * AMPE (attribution by multi-path exploration, Zhu et al.), adapted: `steps` (default ⌊budget/samples⌋ = 4) sign
 * steps of size α = ε/4 that lower the target's softmax probability, inside an L∞ ball of ε = `epsilon` (16/255) × the
 * data's observed range and clamped to that range (not [0, 1]). Each step averages ∇p_c over `samples` (5) noisy
 * copies x_t + σ·range·ξ, ξ ~ N(0, 1), times a random element-wise mask U(1 − ρ, 1 + ρ) (ρ = 0.5; the reference
 * applies that mask in the DCT spectrum, here in input space; input diversity is not applied), smooths the mean
 * gradient with a `tiKernel` (7, σ 3) Gaussian for image inputs, and accumulates momentum (μ = 1) on the L1-normalised
 * gradient. Attribution (MFABA's path formula): −Σ_t (x_{t+1} − x_t) ⊙ mean ∇p_c. Cost: steps·samples forward+vjp rows.
 */
import type { AttributeOptions, Attribution, AttributionContext, Attributor, Inputs } from '@sop/core';
import { BatchRunner } from '../batching.js';
import { aggregate, budgetOf, dataRange, finish, numberOption, rngOf, scoreModeOf } from '../common.js';
import { gradientTargets, repeatTargets, rowSizeOf, withX, xData } from '../gradient-common.js';
import { repeatIndex } from '../batching.js';
import { gaussianBlur2d } from '../spatial.js';

export const ampe: Attributor = {
  name: 'ampe',
  access: 'gradient',
  async attribute(inputs: Inputs, context: AttributionContext, options: AttributeOptions = {}): Promise<Attribution> {
    const runner = new BatchRunner(context, inputs, options);
    const targets = await gradientTargets('ampe', runner, inputs, options);
    const budget = budgetOf(options);
    const samples = numberOption(options, 'samples', 5, (v) => Number.isInteger(v) && v >= 1, 'a positive integer');
    const steps = numberOption(options, 'steps', Math.max(1, Math.floor(budget / samples)), (v) => Number.isInteger(v) && v >= 1, 'a positive integer');
    const [lo, hi] = dataRange(context, inputs);
    const range = hi - lo;
    const eps = numberOption(options, 'epsilon', 16 / 255, (v) => v > 0, 'a positive number') * range;
    const alpha = eps / 4;
    const sigma = numberOption(options, 'sigma', 16 / 255, (v) => v >= 0, 'a non-negative number') * range;
    const rho = numberOption(options, 'rho', 0.5, (v) => v >= 0 && v < 1, 'a number in [0, 1)');
    const mu = numberOption(options, 'momentum', 1, (v) => v >= 0, 'a non-negative number');
    const ti = numberOption(options, 'tiKernel', 7, (v) => Number.isInteger(v) && v >= 0, 'a non-negative odd integer');
    const mode = scoreModeOf(options, 'prob');
    const rng = rngOf(context, options);
    const B = inputs.x.shape[0];
    const n = rowSizeOf(inputs);
    const x = xData(inputs);
    const cur = Float32Array.from(x);
    const mom = new Float64Array(B * n);
    const attr = new Float32Array(B * n);
    const rows = repeatIndex(B, samples);
    const tg = repeatTargets(targets, samples);
    const image = inputs.x.shape.length === 4;
    for (let t = 0; t < steps; t++) {
      const xs = new Float32Array(B * samples * n);
      for (let b = 0; b < B; b++) for (let s = 0; s < samples; s++) {
        const o = (b * samples + s) * n;
        for (let i = 0; i < n; i++) {
          const m = 1 - rho + 2 * rho * rng.next();
          xs[o + i] = (cur[b * n + i] + sigma * rng.normal()) * m;
        }
      }
      const { grads } = await runner.gradient('ampe', withX(inputs, rows, xs), tg, mode);
      const mean = new Float32Array(B * n);
      for (let b = 0; b < B; b++) for (let s = 0; s < samples; s++) {
        const o = (b * samples + s) * n;
        for (let i = 0; i < n; i++) mean[b * n + i] += grads[o + i] / samples;
      }
      const smooth = image && ti > 1 ? gaussianBlur2d(mean, inputs.x.shape, ti, 3) : mean;
      for (let b = 0; b < B; b++) {
        let l1 = 0;
        for (let i = 0; i < n; i++) l1 += Math.abs(smooth[b * n + i]);
        l1 = l1 > 0 ? l1 / n : 1;
        for (let i = 0; i < n; i++) {
          const k = b * n + i;
          mom[k] = mu * mom[k] + smooth[k] / l1;
          const old = cur[k];
          let nv = old - alpha * Math.sign(mom[k]);
          nv = Math.min(x[k] + eps, Math.max(x[k] - eps, nv));
          nv = Math.min(hi, Math.max(lo, nv));
          attr[k] -= (nv - old) * mean[k];
          cur[k] = nv;
        }
      }
    }
    const values = aggregate(context, attr, inputs);
    return finish('ampe', values, context.space.numFeatures, targets, runner, options, { steps, samples, epsilon: eps, output: mode });
  },
};
