/** Gradient clipping by the global L2 norm (torch's `clip_grad_norm_`). */
import type { Tensor } from '../autograd/tensor.js';

/** Scale all gradients so that their joint L2 norm is at most `maxNorm`; returns the norm before clipping. */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  let s = 0;
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  }
  const total = Math.sqrt(s);
  const coef = maxNorm / (total + 1e-6);
  if (coef < 1) {
    for (const p of params) {
      const g = p.grad;
      if (!g) continue;
      for (let i = 0; i < g.length; i++) g[i] *= coef;
    }
  }
  return total;
}
