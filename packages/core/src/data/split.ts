import type { DatasetSplit } from '../dataset.js';
import type { Inputs } from '../inputs.js';
import { Rng } from '../rng.js';
import { UserError } from '../errors.js';
import { takeRows } from '../tensor.js';
import { takeInputs } from '../inputs.js';

/**
 * Seeded train/test split of n row indices. `testFraction` of the rows (rounded, at least 1 when n ≥ 2 and the
 * fraction is > 0) go to test. Indices inside each part are kept in ascending order so that a split is stable
 * under changes that do not affect which rows are picked.
 */
export function splitIndices(n: number, testFraction: number, seed: number): { train: Int32Array; test: Int32Array } {
  if (!(testFraction >= 0 && testFraction < 1)) {
    throw new UserError(`split fraction ${testFraction} is not in [0, 1)`, 'set the test fraction to a number such as 0.2');
  }
  const perm = new Rng(seed).permutation(n);
  let nTest = Math.round(n * testFraction);
  if (testFraction > 0 && nTest === 0 && n >= 2) nTest = 1;
  const test = perm.slice(0, nTest).sort();
  const train = perm.slice(nTest).sort();
  return { train, test };
}

/** Everything a split can hold, for all N rows, before splitting. */
export interface FullData {
  inputs: Inputs;
  /** classification: [N]; regression: [N * outputs]. */
  labels: Float32Array;
  /** Label values per row (1 for classification). */
  labelWidth?: number;
  featureMasks?: { data: Float32Array; width: number };
  inputMasks?: { data: Float32Array; shape: number[] };
  texts?: string[];
  textPairs?: string[];
  rationales?: Array<Array<[number, number]>>;
}

/** Build the split for the given rows of `full`. */
export function subset(full: FullData, rows: ArrayLike<number>): DatasetSplit {
  const w = full.labelWidth ?? 1;
  const labels = new Float32Array(rows.length * w);
  for (let i = 0; i < rows.length; i++) labels.set(full.labels.subarray(rows[i] * w, (rows[i] + 1) * w), i * w);
  const split: DatasetSplit = { inputs: takeInputs(full.inputs, rows), labels };
  if (full.featureMasks) {
    const fw = full.featureMasks.width;
    split.featureMasks = takeRows({ data: full.featureMasks.data, shape: [full.featureMasks.data.length / fw, fw] }, rows).data as Float32Array;
  }
  if (full.inputMasks) split.inputMasks = takeRows(full.inputMasks, rows) as { data: Float32Array; shape: number[] };
  if (full.texts) split.texts = Array.from(rows, (r) => full.texts![r]);
  if (full.textPairs) split.textPairs = Array.from(rows, (r) => full.textPairs![r]);
  if (full.rationales) split.rationales = Array.from(rows, (r) => full.rationales![r].map((s) => [s[0], s[1]] as [number, number]));
  return split;
}

/** Split `full` into train/test with a seeded shuffle. */
export function splitFull(full: FullData, testFraction: number, seed: number): { train: DatasetSplit; test: DatasetSplit } {
  const n = full.inputs.x.shape[0];
  const { train, test } = splitIndices(n, testFraction, seed);
  return { train: subset(full, train), test: subset(full, test) };
}
