import { ContainerModule } from 'inversify';

/** This package's plugins, bound by name to core's tokens with bindPlugin(options, slot, name, value, '@sop/metrics'). */
export const metricsModule = new ContainerModule((_options) => {});
