import type { MethodRun, Metric, MetricValue } from '@sop/core';
import { checkLength, logSoftmax, need, summarise } from './util.js';

/**
 * Per-example fidelity KL(softmax(g) ‖ softmax(z)) = Σ_c q_c (log q_c − log p_c) with q = softmax(g), p = softmax(z).
 * `g` [N, C] is the summed attribution per class, `logits` [N, C] the model's logits. torch's
 * `kl_div(log p, q, reduction='none').sum(-1)`.
 */
export function fidelityPerExample(g: ArrayLike<number>, logits: ArrayLike<number>, numOutputs: number): Float64Array {
  checkLength('allClassAttributions', g.length, logits.length, 'fidelity');
  const lq = logSoftmax(g, numOutputs);
  const lp = logSoftmax(logits, numOutputs);
  const n = Math.floor(g.length / numOutputs);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < numOutputs; j++) {
      const k = i * numOutputs + j;
      const q = Math.exp(lq[k]);
      if (q > 0) s += q * (lq[k] - lp[k]);
    }
    out[i] = Math.max(0, s);
  }
  return out;
}

/** Fidelity averaged over examples (lower is better; 0 when the attributions sum to the logits, as SOP's do). */
export function fidelity(g: ArrayLike<number>, logits: ArrayLike<number>, numOutputs: number): number {
  const f = fidelityPerExample(g, logits, numOutputs);
  let s = 0;
  for (const v of f) s += v;
  return f.length === 0 ? NaN : s / f.length;
}

/**
 * Fidelity of g_c (allClassAttributions) to the logits of the model that predicts: for a faithful-by-construction
 * method (SOP) its own output `predictions` (so SOP scores 0), for post-hoc methods the backbone's original logits
 * (the reference's comparison). Options: `against: 'backbone' | 'predictions'` forces one; otherwise
 * `faithfulByConstruction: true` (set by the evaluation runner) picks `predictions`.
 */
export const fidelityMetric: Metric = {
  name: 'fidelity',
  direction: 'lower',
  category: 'faithfulness',
  tasks: ['classification'],
  modalities: ['tabular', 'image', 'text', 'map'],
  requires: ['allClassAttributions'],
  compute(run: MethodRun, options?: Record<string, unknown>): MetricValue {
    const g = need(run, 'allClassAttributions', 'fidelity');
    const against = (options?.against as string | undefined) ?? (options?.faithfulByConstruction && run.predictions ? 'predictions' : 'backbone');
    const logits = against === 'predictions' && run.predictions ? run.predictions : run.backboneOutputs;
    return summarise(fidelityPerExample(g, logits, run.numOutputs), options, { against });
  },
};
