import type { ContainerModuleLoadOptions } from 'inversify';

/** Bind this area's plugins with bindPlugin(options, slot, name, value, '@sop/core'). */
export function registerMaskerPlugins(_options: Pick<ContainerModuleLoadOptions, 'bind'>): void {}
