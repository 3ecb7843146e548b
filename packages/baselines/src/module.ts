import { ContainerModule } from 'inversify';

/** This package's plugins, bound by name to core's tokens with bindPlugin(options, slot, name, value, '@sop/baselines'). */
export const baselinesModule = new ContainerModule((_options) => {});
