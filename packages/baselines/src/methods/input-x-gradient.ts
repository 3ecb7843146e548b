/**
 * Input × gradient (Shrikumar et al. 2016): x ⊙ ∂f_c/∂x, summed into features. Uses the raw input x (the method's
 * definition); for a baseline-relative version use integrated-gradients. Cost: 1 vjp row per example.
 */
import type { AttributeOptions, Attribution, AttributionContext, Attributor, Inputs } from '@sop/core';
import { BatchRunner } from '../batching.js';
import { aggregate, finish, scoreModeOf } from '../common.js';
import { gradientTargets, xData } from '../gradient-common.js';

export const inputXGradient: Attributor = {
  name: 'input-x-gradient',
  access: 'gradient',
  async attribute(inputs: Inputs, context: AttributionContext, options: AttributeOptions = {}): Promise<Attribution> {
    const runner = new BatchRunner(context, inputs, options);
    const targets = await gradientTargets('input-x-gradient', runner, inputs, options);
    const mode = scoreModeOf(options, 'logit');
    const { grads } = await runner.gradient('input-x-gradient', inputs, targets, mode);
    const x = xData(inputs);
    for (let i = 0; i < grads.length; i++) grads[i] *= x[i];
    const values = aggregate(context, grads, inputs);
    return finish('input-x-gradient', values, context.space.numFeatures, targets, runner, options, { output: mode });
  },
};
