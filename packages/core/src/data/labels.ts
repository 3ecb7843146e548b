import type { Task } from '../dataset.js';
import { UserError } from '../errors.js';

export interface EncodedLabels {
  /** classification: [N] class indices; regression: [N * outputs]. */
  labels: Float32Array;
  numOutputs: number;
  classNames?: string[];
}

const INT_RE = /^[+-]?\d+$/;

function naturalCompare(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  if (a.trim() !== '' && b.trim() !== '' && Number.isFinite(na) && Number.isFinite(nb)) return na - nb;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Turn raw labels (numbers or strings, one per row) into class indices. Non-negative integers (or integer strings)
 * are used as class indices directly (numOutputs = max + 1); anything else is a class name, indexed in sorted order
 * (numbers numerically) unless `classes` fixes the order. `where(i)` names row i in errors (file and line).
 */
export function encodeClassLabels(
  raw: ReadonlyArray<string | number>,
  where: (i: number) => string,
  classes?: string[],
): EncodedLabels {
  const n = raw.length;
  const labels = new Float32Array(n);
  if (classes) {
    const index = new Map(classes.map((c, i) => [c, i]));
    for (let i = 0; i < n; i++) {
      const k = index.get(String(raw[i]).trim());
      if (k === undefined) {
        throw new UserError(`${where(i)}: label ${JSON.stringify(raw[i])} is not one of the configured classes [${classes.join(', ')}]`, 'add it to data.classes or fix the label');
      }
      labels[i] = k;
    }
    return { labels, numOutputs: classes.length, classNames: [...classes] };
  }
  const allInts = raw.every((v) => (typeof v === 'number' ? Number.isInteger(v) && v >= 0 : INT_RE.test(v.trim()) && Number(v) >= 0));
  if (allInts) {
    let max = 0;
    for (let i = 0; i < n; i++) {
      labels[i] = Number(raw[i]);
      max = Math.max(max, labels[i]);
    }
    return { labels, numOutputs: max + 1, classNames: Array.from({ length: max + 1 }, (_, i) => String(i)) };
  }
  for (let i = 0; i < n; i++) {
    const v = raw[i];
    if (typeof v === 'number' && !Number.isFinite(v)) {
      throw new UserError(`${where(i)}: label is ${v}`, 'class labels must be integers ≥ 0 or names');
    }
  }
  const names = [...new Set(raw.map((v) => String(v).trim()))].sort(naturalCompare);
  const index = new Map(names.map((c, i) => [c, i]));
  for (let i = 0; i < n; i++) labels[i] = index.get(String(raw[i]).trim())!;
  return { labels, numOutputs: names.length, classNames: names };
}

/** Regression targets: every value must be a finite number. `raw` is [N][outputs]. */
export function encodeRegressionLabels(raw: ReadonlyArray<ReadonlyArray<string | number>>, where: (i: number, j: number) => string): EncodedLabels {
  const n = raw.length;
  const k = n > 0 ? raw[0].length : 1;
  const labels = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) {
      const v = raw[i][j];
      const num = typeof v === 'number' ? v : v.trim() === '' ? NaN : Number(v);
      if (!Number.isFinite(num)) {
        throw new UserError(`${where(i, j)}: regression target ${JSON.stringify(v)} is not a finite number`, 'fix or drop that row, or use task: classification for class names');
      }
      labels[i * k + j] = num;
    }
  }
  return { labels, numOutputs: k };
}

/** Encode train and test labels together so both use the same class indices. */
export function encodeBoth(
  task: Task,
  train: ReadonlyArray<ReadonlyArray<string | number>>,
  test: ReadonlyArray<ReadonlyArray<string | number>>,
  whereTrain: (i: number, j: number) => string,
  whereTest: (i: number, j: number) => string,
  classes?: string[],
): { train: Float32Array; test: Float32Array; numOutputs: number; classNames?: string[] } {
  if (task === 'regression') {
    const a = encodeRegressionLabels(train, whereTrain);
    const b = encodeRegressionLabels(test, whereTest);
    return { train: a.labels, test: b.labels, numOutputs: a.numOutputs };
  }
  for (const [rows, where] of [[train, whereTrain], [test, whereTest]] as const) {
    rows.forEach((r, i) => {
      if (r.length !== 1) throw new UserError(`${where(i, 0)}: classification needs exactly one label column, found ${r.length}`, 'give one label column, or set task: regression');
    });
  }
  const all = [...train.map((r) => r[0]), ...test.map((r) => r[0])];
  const enc = encodeClassLabels(all, (i) => (i < train.length ? whereTrain(i, 0) : whereTest(i - train.length, 0)), classes);
  return {
    train: enc.labels.slice(0, train.length),
    test: enc.labels.slice(train.length),
    numOutputs: enc.numOutputs,
    classNames: enc.classNames,
  };
}

/** Optional `classes: [...]` option. */
export function optClasses(o: Record<string, unknown>, where = 'data'): string[] | undefined {
  const v = o.classes;
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length === 0 || !v.every((c) => typeof c === 'string' || typeof c === 'number')) {
    throw new UserError(`${where}.classes: expected a list of class names, found ${JSON.stringify(v)}`, `set ${where}.classes to e.g. [negative, positive]`);
  }
  return v.map(String);
}
