/**
 * FRESH (Jain et al. 2020), self-explaining: the feature score is an attention-derived tensor the backbone exposes
 * as an extra output named by option `attention` (default: an extra output called 'attention', else the first
 * extra output). Accepted layouts: [B, d], [B, T] (leading T − d tokens such as CLS dropped), [B, heads, T] (mean over
 * heads) and [B, heads, T, T] (row of the first query — CLS — averaged over heads). The rationale (top-k of the
 * score) and the prediction on it come from the -F conversion: `toFaithful(fresh, context)` predicts with the frozen
 * backbone on the kept features (the reference trains a copy; here it stays frozen). Cost: 1 forward row.
 */
import { UserError, type AttributeOptions, type Attribution, type AttributionContext, type Attributor, type Inputs } from '@sop/core';
import { BatchRunner } from '../batching.js';
import { finish, needsPrediction, resolveTargets } from '../common.js';

export function attentionScores(A: { data: Float32Array; shape: number[] }, d: number): Float32Array {
  const s = A.shape;
  const B = s[0];
  let T: number;
  let per: Float64Array;
  const out = new Float32Array(B * d);
  const take = (b: number, row: ArrayLike<number>, Tn: number): void => {
    const skip = Tn - d;
    if (skip < 0) throw new UserError(`fresh: attention has ${Tn} positions for ${d} features`, 'expose an attention map with one position per feature (plus optional leading CLS tokens)');
    for (let j = 0; j < d; j++) out[b * d + j] = row[skip + j];
  };
  if (s.length === 2) {
    T = s[1];
    for (let b = 0; b < B; b++) take(b, A.data.subarray(b * T, (b + 1) * T), T);
  } else if (s.length === 3) {
    const H = s[1];
    T = s[2];
    for (let b = 0; b < B; b++) {
      per = new Float64Array(T);
      for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) per[t] += A.data[(b * H + h) * T + t] / H;
      take(b, per, T);
    }
  } else if (s.length === 4) {
    const H = s[1];
    T = s[3];
    const Q = s[2];
    for (let b = 0; b < B; b++) {
      per = new Float64Array(T);
      for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) per[t] += A.data[((b * H + h) * Q + 0) * T + t] / H;
      take(b, per, T);
    }
  } else {
    throw new UserError(`fresh: attention output has shape [${s.join(', ')}]`, 'expose [B, d], [B, T], [B, heads, T] or [B, heads, T, T]');
  }
  return out;
}

export const fresh: Attributor = {
  name: 'fresh',
  access: 'self',
  async attribute(inputs: Inputs, context: AttributionContext, options: AttributeOptions = {}): Promise<Attribution> {
    const runner = new BatchRunner(context, inputs, options);
    const bb = context.backbone;
    const extra = bb.info.extraOutputs ?? [];
    const name = (options.attention as string | undefined) ?? (extra.includes('attention') ? 'attention' : extra[0]);
    if (!name) {
      throw new UserError(`fresh needs an attention output, and backbone '${bb.name}' exposes none`, 'set the attributor option attention: NAME to an extra output of the backbone (e.g. the last layer\'s attention probabilities)');
    }
    const fwd = await runner.forward(inputs, [name]);
    const A = fwd[name];
    if (!A) throw new UserError(`backbone '${bb.name}' did not return '${name}'`, `expose it via forward({outputs: ['${name}']}); known extra outputs: ${extra.join(', ') || 'none'}`);
    const d = context.space.numFeatures;
    const B = inputs.x.shape[0];
    const targets = resolveTargets(options.target, options.labels, needsPrediction(options) ? fwd.output : null, B, fwd.output.shape[1]);
    const values = attentionScores(A, d);
    return finish('fresh', values, d, targets, runner, options, { attention: name });
  },
};
