import { ContainerModule } from 'inversify';
import { registerDataPlugins } from './data/plugins.js';
import { registerFeaturePlugins } from './features/plugins.js';
import { registerMaskerPlugins } from './maskers/plugins.js';
import { registerModelPlugins } from './models/plugins.js';

/** Core's own plugins: data loaders, feature spaces, maskers, the MLP backbone and the models (sop, scores-activation, none). */
export const coreModule = new ContainerModule((options) => {
  registerDataPlugins(options);
  registerFeaturePlugins(options);
  registerMaskerPlugins(options);
  registerModelPlugins(options);
});
