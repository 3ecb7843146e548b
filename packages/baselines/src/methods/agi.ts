/**
 * AGI, adversarial gradient integration (Pan et al. 2021), adapted to any data range. For each adversarial class t'
 * (option `classes`, default 5 evenly spaced classes ⌊i·C/5⌋ minus the target, like the reference's
 * {0, 200, 400, 600, 800}), run up to `iterations` (default ⌊budget/5⌋ = 4) FGSM steps toward t':
 * x' ← clamp(x' + ε·sign(∇ log p_{t'}(x'))) with ε = `epsilon` (0.05) × the data's observed range and the clamp to
 * that range (not [0, 1]); stop when the prediction becomes t'. Attribution Σ_{t'} Σ_steps −∇p_c(x') ⊙ (x'_new − x').
 * Classifiers only (C > 1). Cost per step and path: 1 forward + 2 vjp rows (p_c and log p_{t'}).
 */
import { UserError, type AttributeOptions, type Attribution, type AttributionContext, type Attributor, type Inputs } from '@sop/core';
import { BatchRunner, softmax } from '../batching.js';
import { aggregate, budgetOf, dataRange, finish, numberOption } from '../common.js';
import { gradientTargets, rowSizeOf, withX, xData } from '../gradient-common.js';

export function agiClasses(C: number, target: number, classes?: number[]): number[] {
  const base = classes ?? Array.from(new Set(Array.from({ length: Math.min(5, C) }, (_, i) => Math.floor((i * C) / Math.min(5, C)))));
  return base.filter((c) => c !== target && c >= 0 && c < C);
}

export const agi: Attributor = {
  name: 'agi',
  access: 'gradient',
  async attribute(inputs: Inputs, context: AttributionContext, options: AttributeOptions = {}): Promise<Attribution> {
    const runner = new BatchRunner(context, inputs, options);
    const C = context.backbone.info.outputDim;
    if (C < 2) throw new UserError('agi needs a classifier (at least 2 outputs) to attack toward other classes', 'use integrated-gradients or mfaba for regression backbones');
    const targets = await gradientTargets('agi', runner, inputs, options);
    const budget = budgetOf(options);
    const iterations = numberOption(options, 'iterations', Math.max(1, Math.floor(budget / 5)), (v) => Number.isInteger(v) && v >= 1, 'a positive integer');
    const [lo, hi] = dataRange(context, inputs);
    const eps = numberOption(options, 'epsilon', 0.05, (v) => v > 0, 'a positive number') * (hi - lo);
    const B = inputs.x.shape[0];
    const n = rowSizeOf(inputs);
    const x = xData(inputs);
    // one path per (example, adversarial class)
    const paths: { b: number; adv: number }[] = [];
    for (let b = 0; b < B; b++) for (const c of agiClasses(C, targets[b], options.classes as number[] | undefined)) paths.push({ b, adv: c });
    const cur = new Float32Array(paths.length * n);
    paths.forEach((p, r) => cur.set(x.subarray(p.b * n, (p.b + 1) * n), r * n));
    const attr = new Float32Array(B * n);
    let active = paths.map((_, i) => i);
    for (let it = 0; it < iterations && active.length; it++) {
      const xs = new Float32Array(active.length * n);
      active.forEach((pi, r) => xs.set(cur.subarray(pi * n, (pi + 1) * n), r * n));
      const rows = active.map((pi) => paths[pi].b);
      const fwd = await runner.forward(withX(inputs, rows, xs));
      const p = softmax(fwd.output.data, active.length, C);
      const keep: number[] = [];
      active.forEach((pi, r) => {
        let best = 0;
        for (let j = 1; j < C; j++) if (p[r * C + j] > p[r * C + best]) best = j;
        if (best !== paths[pi].adv) keep.push(r);
      });
      if (!keep.length) break;
      const m = keep.length;
      const xs2 = new Float32Array(2 * m * n);
      const rows2: number[] = [];
      const cot = new Float32Array(2 * m * C);
      keep.forEach((r, q) => {
        const pi = active[r];
        const { b, adv } = paths[pi];
        xs2.set(xs.subarray(r * n, (r + 1) * n), q * n);
        xs2.set(xs.subarray(r * n, (r + 1) * n), (m + q) * n);
        const c = targets[b];
        for (let j = 0; j < C; j++) {
          cot[q * C + j] = p[r * C + c] * ((j === c ? 1 : 0) - p[r * C + j]); // ∇ p_c
          cot[(m + q) * C + j] = (j === adv ? 1 : 0) - p[r * C + j]; // ∇ log p_adv
        }
        rows2.push(b);
      });
      const { grads } = await runner.vjpRows('agi', withX(inputs, [...rows2, ...rows2], xs2), cot, ['x']);
      const g = grads.x.data;
      const nextActive: number[] = [];
      keep.forEach((r, q) => {
        const pi = active[r];
        const b = paths[pi].b;
        for (let i = 0; i < n; i++) {
          const old = cur[pi * n + i];
          const ga = g[(m + q) * n + i];
          const nv = Math.min(hi, Math.max(lo, old + eps * Math.sign(ga)));
          attr[b * n + i] -= g[q * n + i] * (nv - old);
          cur[pi * n + i] = nv;
        }
        nextActive.push(pi);
      });
      active = nextActive;
    }
    const values = aggregate(context, attr, inputs);
    return finish('agi', values, context.space.numFeatures, targets, runner, options, { iterations, epsilon: eps, range: [lo, hi], paths: paths.length, output: 'prob' });
  },
};
