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
import { GaussianBlur } from '../spatial.js';
import { BulkRng } from '../random.js';
import { ampeStepKernel, baselineKernels } from '../kernels/index.js';

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
    // noise: standard normals and the element-wise U(1 − ρ, 1 + ρ) factors drawn in bulk per step (BulkRng, seeded
    // from the method's Rng) straight into the rows; rows, mean and blur buffers are allocated once, reused across steps
    const noise = new BulkRng(rng);
    const R = B * samples;
    const xs = new Float32Array(R * n);
    const mean = new Float32Array(B * n);
    // Σ_s ∇ per example, summed (float64) as the gradient chunks arrive, in sample order: the rows' gradients are never
    // gathered into one [R, n] array
    const sum = new Float64Array(B * n);
    const consume = (start: number, end: number, g: Float32Array): void => sumOverSamples(sum, g, start, end, samples, n);
    const blur = image && ti > 1 ? new GaussianBlur(inputs.x.shape, ti, 3) : null;
    // WebAssembly: the gradient chunks are gathered, then mean, blur and step run in one call (same values)
    const wasm = baselineKernels();
    const gathered = wasm ? new Float32Array(R * n) : null;
    const gather = (start: number, _end: number, g: Float32Array): void => gathered!.set(g, start * n);
    const [H, W] = image ? inputs.x.shape.slice(2) : [1, 1];
    const blurTaps = blur ? { ker: blur.ker, r: blur.r, H, W } : null;
    const state = { cur, mom, attr, x };
    for (let t = 0; t < steps; t++) {
      // xs[b, s] = (cur[b] + σ·z) ⊙ u: all the normals (row by row), then all the uniform factors
      noise.fillNoisyRows(xs, cur, R, samples, n, sigma, 1 - rho, 1 + rho);
      if (wasm) {
        await runner.gradient('ampe', withX(inputs, rows, xs), tg, mode, gather);
        ampeStepKernel(wasm, gathered!, B, samples, n, blurTaps, state, mu, alpha, eps, lo, hi);
        continue;
      }
      sum.fill(0);
      await runner.gradient('ampe', withX(inputs, rows, xs), tg, mode, consume);
      const inv = 1 / samples;
      for (let i = 0; i < B * n; i++) mean[i] = sum[i] * inv;
      const smooth = blur ? blur.apply(mean) : mean;
      step(cur, mom, attr, smooth, mean, x, B, n, mu, alpha, eps, lo, hi);
    }
    const values = aggregate(context, attr, inputs);
    return finish('ampe', values, context.space.numFeatures, targets, runner, options, { steps, samples, epsilon: eps, output: mode });
  },
};

/** sum[⌊r / samples⌋] += g[r − start] for the rows r = start … end − 1 of a gradient chunk g [end − start, n]. */
function sumOverSamples(sum: Float64Array, g: Float32Array, start: number, end: number, samples: number, n: number): void {
  for (let r = start; r < end; r++) {
    const o = Math.floor(r / samples) * n;
    const go = (r - start) * n;
    for (let i = 0; i < n; i++) sum[o + i] += g[go + i];
  }
}

/**
 * One sign step per example: momentum on the L1-normalised (smoothed) gradient, x_{t+1} = clip(x_t − α·sign(m)) to the
 * ε-ball around x and to [lo, hi], and the path attribution −(x_{t+1} − x_t) ⊙ mean gradient.
 */
function step(cur: Float32Array, mom: Float64Array, attr: Float32Array, smooth: Float32Array, mean: Float32Array, x: Float32Array, B: number, n: number, mu: number, alpha: number, eps: number, lo: number, hi: number): void {
  for (let b = 0; b < B; b++) {
    const o = b * n;
    let l1 = 0;
    for (let i = o; i < o + n; i++) l1 += Math.abs(smooth[i]);
    l1 = l1 > 0 ? l1 / n : 1;
    for (let k = o; k < o + n; k++) {
      const mk = mu * mom[k] + smooth[k] / l1;
      mom[k] = mk;
      const old = cur[k];
      let nv = old - (mk > 0 ? alpha : mk < 0 ? -alpha : 0);
      const xk = x[k];
      if (nv > xk + eps) nv = xk + eps;
      if (nv < xk - eps) nv = xk - eps;
      if (nv > hi) nv = hi;
      if (nv < lo) nv = lo;
      attr[k] -= (nv - old) * mean[k];
      cur[k] = nv;
    }
  }
}
