/**
 * MFABA (Zhu et al. 2024), the "sharp" variant as exlib runs it, adapted to any data range: starting at x, take up
 * to `budget` (20) steps x_{t+1} = clamp(x_t − ε·√n·g_t/‖g_t‖₂) that lower the softmax probability of the target
 * (g_t = ∇p_c(x_t); raw output when C = 1), with ε = `epsilon` (0.01) × the data's observed range (so each element
 * moves ε·range in RMS) and the clamp to the observed range [min, max] of context.reference (or the batch) instead of
 * [0, 1]. A path stops early once the predicted class is no longer the target. Attribution:
 * −Σ_t (x_{t+1} − x_t) ⊙ g_t, summed into features. Cost per step: 1 forward + 1 vjp row per active example.
 */
import type { AttributeOptions, Attribution, AttributionContext, Attributor, Inputs } from '@sop/core';
import { BatchRunner } from '../batching.js';
import { aggregate, budgetOf, dataRange, finish, numberOption, scoreModeOf } from '../common.js';
import { gradientTargets, rowSizeOf, withX, xData } from '../gradient-common.js';

export const mfaba: Attributor = {
  name: 'mfaba',
  access: 'gradient',
  async attribute(inputs: Inputs, context: AttributionContext, options: AttributeOptions = {}): Promise<Attribution> {
    const runner = new BatchRunner(context, inputs, options);
    const targets = await gradientTargets('mfaba', runner, inputs, options);
    const steps = budgetOf(options);
    const mode = scoreModeOf(options, 'prob');
    const [lo, hi] = dataRange(context, inputs);
    const eps = numberOption(options, 'epsilon', 0.01, (v) => v > 0, 'a positive number') * (hi - lo);
    const B = inputs.x.shape[0];
    const n = rowSizeOf(inputs);
    const C = context.backbone.info.outputDim;
    const cur = Float32Array.from(xData(inputs));
    const attr = new Float32Array(B * n);
    let active = Array.from({ length: B }, (_, b) => b);
    let stepsTaken = 0;
    for (let t = 0; t < steps && active.length; t++) {
      const xs = new Float32Array(active.length * n);
      active.forEach((b, r) => xs.set(cur.subarray(b * n, (b + 1) * n), r * n));
      const tg = Int32Array.from(active.map((b) => targets[b]));
      const { grads, outputs } = await runner.gradient('mfaba', withX(inputs, active, xs), tg, mode);
      const next: number[] = [];
      active.forEach((b, r) => {
        if (t > 0 && C > 1) {
          let best = 0;
          for (let j = 1; j < C; j++) if (outputs.data[r * C + j] > outputs.data[r * C + best]) best = j;
          if (best !== targets[b]) return; // label flipped: this path is done
        }
        let nrm = 0;
        for (let i = 0; i < n; i++) nrm += grads[r * n + i] ** 2;
        nrm = Math.sqrt(nrm);
        if (!(nrm > 0)) return;
        const scale = (eps * Math.sqrt(n)) / nrm;
        for (let i = 0; i < n; i++) {
          const g = grads[r * n + i];
          const old = cur[b * n + i];
          const nv = Math.min(hi, Math.max(lo, old - scale * g));
          attr[b * n + i] -= (nv - old) * g;
          cur[b * n + i] = nv;
        }
        next.push(b);
      });
      active = next;
      stepsTaken++;
    }
    const values = aggregate(context, attr, inputs);
    return finish('mfaba', values, context.space.numFeatures, targets, runner, options, { steps: stepsTaken, epsilon: eps, range: [lo, hi], output: mode });
  },
};
