/** Every attributor of this package, by name. */
import type { Attributor } from '@sop/core';
import { agi } from './methods/agi.js';
import { ampe } from './methods/ampe.js';
import { archipelago } from './methods/archipelago.js';
import { fresh } from './methods/fresh.js';
import { fullgrad } from './methods/fullgrad.js';
import { gradcam } from './methods/gradcam.js';
import { gradient } from './methods/gradient.js';
import { inputXGradient } from './methods/input-x-gradient.js';
import { integratedGradients } from './methods/integrated-gradients.js';
import { kernelShap } from './methods/kernel-shap.js';
import { lime } from './methods/lime.js';
import { mfaba } from './methods/mfaba.js';
import { permutationShap } from './methods/permutation-shap.js';
import { rise } from './methods/rise.js';
import { UserError } from '@sop/core';

export function allAttributors(): Attributor[] {
  return [lime, kernelShap, permutationShap, rise, archipelago, gradient, inputXGradient, integratedGradients, gradcam, fullgrad, mfaba, agi, ampe, fresh];
}

export function getAttributor(name: string): Attributor {
  const a = allAttributors().find((x) => x.name === name);
  if (!a) throw new UserError(`unknown attributor '${name}'`, `use one of: ${allAttributors().map((x) => x.name).join(', ')}`);
  return a;
}
