import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DataLoader, DataLoaderOptions, Dataset } from '../dataset.js';
import { UserError } from '../errors.js';
import { readCsvTable, tabularDataset } from './csv.js';
import { optBool, optInt, optNumber, reqString, splitFraction } from './options.js';
import { syntheticProduct, syntheticRelevant, syntheticShapes, syntheticText } from './synthetic.js';

/** Folder of the CSV files written by tools/fixtures/sklearn_datasets.py. */
export const BUILTIN_DATASETS_DIR = fileURLToPath(new URL('../../../../fixtures/datasets/', import.meta.url));

export const BUILTIN_TABLES = ['breast-cancer', 'digits', 'iris', 'wine'] as const;
export const BUILTIN_SYNTHETIC = ['synthetic-product', 'synthetic-relevant', 'synthetic-shapes', 'synthetic-text'] as const;
export const BUILTIN_NAMES: readonly string[] = [...BUILTIN_TABLES, ...BUILTIN_SYNTHETIC];

interface TableMeta {
  classNames: string[];
  featureNames: string[];
  origin: string;
  label: string;
}

/** Load one of sklearn's toy tables shipped as CSV (split with a seeded shuffle, `split` = test fraction). */
export function loadBuiltinTable(name: string, options: { split?: number; seed?: number; standardize?: boolean } = {}): Dataset {
  const csv = `${BUILTIN_DATASETS_DIR}${name}.csv`;
  const metaFile = `${BUILTIN_DATASETS_DIR}${name}.json`;
  let meta: TableMeta;
  try {
    meta = JSON.parse(readFileSync(metaFile, 'utf8')) as TableMeta;
  } catch (e) {
    throw new UserError(`built-in data set '${name}' is missing its files (${metaFile})`, 'regenerate them with /usr/bin/python3 tools/fixtures/sklearn_datasets.py', { cause: e });
  }
  const table = readCsvTable(csv, { header: true, label: meta.label });
  return tabularDataset(name, 'classification', table, undefined, options.split ?? 0.2, options.seed ?? 0, {
    classNames: meta.classNames,
    standardize: options.standardize,
    meta: { source: csv, origin: meta.origin, licence: 'see fixtures/datasets/LICENSE-NOTE.md' },
  });
}

/**
 * `data: {use: builtin, name, split?: 0.2, standardize?: false, ...generator options}`. Names: digits (1797×64,
 * 10 classes), breast-cancer (569×30, 2), wine (178×13, 3), iris (150×4, 3) — sklearn's bundled tables — and the
 * seeded generators synthetic-relevant {n, features, relevant, classes}, synthetic-product {n, features, groups},
 * synthetic-shapes {n, size, noise}, synthetic-text {n, length}; all use `seed` and `split` (test fraction).
 */
export const builtinLoader: DataLoader = {
  name: 'builtin',
  async load(options: DataLoaderOptions): Promise<Dataset> {
    const name = reqString(options, 'name');
    const seed = optInt(options, 'seed', 0, 'data', 0)!;
    const testFraction = splitFraction(options);
    if ((BUILTIN_TABLES as readonly string[]).includes(name)) {
      if (options.task === 'regression') throw new UserError(`built-in data set '${name}' is a classification task`, 'set task: classification');
      return loadBuiltinTable(name, { split: testFraction, seed, standardize: optBool(options, 'standardize', false) });
    }
    const n = optInt(options, 'n', undefined, 'data', 2);
    switch (name) {
      case 'synthetic-relevant':
        return syntheticRelevant({
          n,
          seed,
          testFraction,
          features: optInt(options, 'features', undefined, 'data', 1),
          relevant: optInt(options, 'relevant', undefined, 'data', 1),
          classes: optInt(options, 'classes', undefined, 'data', 2),
        });
      case 'synthetic-product':
        return syntheticProduct({ n, seed, testFraction, features: optInt(options, 'features', undefined, 'data', 1), groups: options.groups as number[][] | undefined });
      case 'synthetic-shapes':
        return syntheticShapes({ n, seed, testFraction, size: optInt(options, 'size', undefined, 'data', 6), noise: optNumber(options, 'noise') });
      case 'synthetic-text':
        return syntheticText({ n, seed, testFraction, length: options.length as [number, number] | undefined });
      default:
        throw new UserError(`data.name: unknown built-in data set '${name}'`, `use one of: ${BUILTIN_NAMES.join(', ')}`);
    }
  },
};
