/**
 * Gradient (saliency, Simonyan et al. 2014): ∂f_c/∂x, summed into features by the feature space. Signed by default;
 * `absolute: true` sums |∂f_c/∂x| instead. Score `output`: 'logit' (default) or 'prob'. Cost: 1 vjp row per example
 * (+1 forward row for 'predicted').
 */
import type { AttributeOptions, Attribution, AttributionContext, Attributor, Inputs } from '@sop/core';
import { BatchRunner } from '../batching.js';
import { aggregate, finish, scoreModeOf } from '../common.js';
import { gradientTargets } from '../gradient-common.js';

export const gradient: Attributor = {
  name: 'gradient',
  access: 'gradient',
  async attribute(inputs: Inputs, context: AttributionContext, options: AttributeOptions = {}): Promise<Attribution> {
    const runner = new BatchRunner(context, inputs, options);
    const targets = await gradientTargets('gradient', runner, inputs, options);
    const mode = scoreModeOf(options, 'logit');
    const { grads } = await runner.gradient('gradient', inputs, targets, mode);
    if (options.absolute === true) for (let i = 0; i < grads.length; i++) grads[i] = Math.abs(grads[i]);
    const values = aggregate(context, grads, inputs);
    return finish('gradient', values, context.space.numFeatures, targets, runner, options, { output: mode });
  },
};
