import type { ContainerModuleLoadOptions } from 'inversify';
import { bindPlugin } from '../di/container.js';
import { FEATURE_SPACES } from './registry.js';

/** Bind core's feature spaces (slot 'features'): columns, patches, segments, tokens. */
export function registerFeaturePlugins(options: Pick<ContainerModuleLoadOptions, 'bind'>): void {
  for (const [name, factory] of Object.entries(FEATURE_SPACES)) bindPlugin(options, 'features', name, factory, '@sop/core');
}
