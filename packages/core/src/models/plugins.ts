import type { ContainerModuleLoadOptions } from 'inversify';
import { bindPlugin } from '../di/container.js';
import { mlpBackboneFactory } from './mlp.js';
import { attentionGeneratorFactory } from './attention-generator.js';
import { sparsemaxSelectorFactory } from './sparsemax-selector.js';
import { sopModelFactory, scoresActivationModelFactory, noneModelFactory } from '../train/builtin-models.js';

/** Bind this area's plugins with bindPlugin(options, slot, name, value, '@sop/core'). */
export function registerModelPlugins(options: Pick<ContainerModuleLoadOptions, 'bind'>): void {
  bindPlugin(options, 'backbone', 'mlp', mlpBackboneFactory, '@sop/core');
  bindPlugin(options, 'model', 'sop', sopModelFactory, '@sop/core');
  bindPlugin(options, 'model', 'scores-activation', scoresActivationModelFactory, '@sop/core');
  bindPlugin(options, 'model', 'none', noneModelFactory, '@sop/core');
  bindPlugin(options, 'generator', 'attention', attentionGeneratorFactory, '@sop/core');
  bindPlugin(options, 'selector', 'sparsemax', sparsemaxSelectorFactory, '@sop/core');
}
