import type { ContainerModuleLoadOptions } from 'inversify';
import { bindPlugin } from '../di/container.js';
import { DATA_LOADERS } from './loaders.js';

/** Bind core's data loaders (slot 'dataset'): builtin, csv, images, jsonl, npy. */
export function registerDataPlugins(options: Pick<ContainerModuleLoadOptions, 'bind'>): void {
  for (const [name, loader] of Object.entries(DATA_LOADERS)) bindPlugin(options, 'dataset', name, loader, '@sop/core');
}
