import { ContainerModule } from 'inversify';
import { bindPlugin } from '@sop/core';
import { faithfulFactory } from './faithful.js';
import { allAttributors } from './registry.js';

/**
 * This package's plugins: every attributor under slot 'attributor' by its name (an `Attributor`), and its -F
 * conversion under `<name>-f` (a `FaithfulExplainerFactory`: `create(context, defaults)` → `FaithfulExplainer`).
 */
export const baselinesModule = new ContainerModule((options) => {
  for (const a of allAttributors()) {
    bindPlugin(options, 'attributor', a.name, a, '@sop/baselines');
    bindPlugin(options, 'attributor', `${a.name}-f`, faithfulFactory(a), '@sop/baselines');
  }
});
