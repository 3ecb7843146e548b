import { Rng, UserError } from '@sop/core';

export interface BootstrapOptions {
  /** Number of resamples with replacement (the reference uses 4). */
  resamples?: number;
  seed?: number;
}

export interface BootstrapResult {
  /** Mean of the resample means (what the reference reports as the value). */
  mean: number;
  /** Population std (ddof 0, numpy's default) of the resample means. */
  std: number;
  /** The resample means themselves. */
  means: number[];
}

/**
 * Bootstrap mean ± std as the reference computes it: draw `resamples` samples of size n with replacement (indices from
 * the seeded Rng), take each sample's mean, and report the mean and the (ddof 0) std of those means.
 */
export function bootstrap(values: ArrayLike<number>, options: BootstrapOptions = {}): BootstrapResult {
  const resamples = options.resamples ?? 4;
  const n = values.length;
  if (n === 0) throw new UserError('bootstrap of an empty set of values', 'evaluate at least one example');
  if (!Number.isInteger(resamples) || resamples < 1) throw new UserError(`bootstrap resamples must be a positive integer, got ${resamples}`, 'set resamples to e.g. 4');
  const rng = new Rng(options.seed ?? 42);
  const means: number[] = [];
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += values[rng.int(n)];
    means.push(s / n);
  }
  const m = means.reduce((a, b) => a + b, 0) / resamples;
  const v = means.reduce((a, b) => a + (b - m) * (b - m), 0) / resamples;
  return { mean: m, std: Math.sqrt(v), means };
}
