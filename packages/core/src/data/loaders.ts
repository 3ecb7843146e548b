import type { DataLoader, DataLoaderOptions, Dataset } from '../dataset.js';
import { UserError } from '../errors.js';
import { builtinLoader } from './builtin.js';
import { csvLoader } from './csv.js';
import { imagesLoader } from './images.js';
import { jsonlLoader } from './jsonl.js';
import { npyLoader } from './npy.js';

/** Core's data loaders, by plugin name (`data: {use: NAME}`). */
export const DATA_LOADERS: Readonly<Record<string, DataLoader>> = {
  builtin: builtinLoader,
  csv: csvLoader,
  images: imagesLoader,
  jsonl: jsonlLoader,
  npy: npyLoader,
};

/**
 * Load a data set with one of core's loaders, without a DI container. `baseDir` defaults to the current folder and
 * `seed` to 0.
 */
export async function loadDataset(options: Partial<DataLoaderOptions> & { use: string }): Promise<Dataset> {
  const loader = DATA_LOADERS[options.use];
  if (!loader) {
    throw new UserError(`data.use: unknown data loader '${options.use}'`, `use one of: ${Object.keys(DATA_LOADERS).join(', ')}`);
  }
  return loader.load({ ...options, baseDir: options.baseDir ?? process.cwd(), seed: options.seed ?? 0 } as DataLoaderOptions);
}
