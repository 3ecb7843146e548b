import type { ContainerModuleLoadOptions } from 'inversify';
import { bindPlugin } from '../di/container.js';
import { MASKERS } from './registry.js';

/** Bind core's maskers (slot 'masker'): attention, blur, mean, pad, zero. */
export function registerMaskerPlugins(options: Pick<ContainerModuleLoadOptions, 'bind'>): void {
  for (const [name, factory] of Object.entries(MASKERS)) bindPlugin(options, 'masker', name, factory, '@sop/core');
}
