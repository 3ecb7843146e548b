import type { DataLoader, DataLoaderOptions, Dataset, DatasetSplit, Task } from '../dataset.js';
import { UserError } from '../errors.js';
import { encodeBoth, optClasses } from './labels.js';
import { optBool, optString, readNonEmpty, reqString, resolvePath, splitFraction } from './options.js';
import { splitIndices, subset } from './split.js';

export interface CsvRecords {
  /** Cells per record. */
  records: string[][];
  /** 1-based line number where each record starts. */
  lines: number[];
}

/**
 * RFC-4180-style CSV: `delimiter`-separated cells, double-quoted cells may hold delimiters, newlines and doubled
 * quotes. Blank lines are skipped; a UTF-8 BOM is dropped. An unterminated quote is a UserError naming `file`.
 */
export function parseCsv(text: string, file = 'CSV', delimiter = ','): CsvRecords {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const records: string[][] = [];
  const lines: number[] = [];
  let line = 1;
  let i = 0;
  const n = text.length;
  while (i < n) {
    // one record
    const startLine = line;
    const cells: string[] = [];
    let cell = '';
    let blank = true;
    for (;;) {
      if (i >= n) {
        cells.push(cell);
        break;
      }
      const ch = text[i];
      if (ch === '"' && cell.trim() === '') {
        blank = false;
        cell = '';
        i++;
        let closed = false;
        while (i < n) {
          const c = text[i];
          if (c === '"') {
            if (text[i + 1] === '"') {
              cell += '"';
              i += 2;
              continue;
            }
            i++;
            closed = true;
            break;
          }
          if (c === '\n') line++;
          cell += c;
          i++;
        }
        if (!closed) throw new UserError(`${file}: line ${startLine}: a quoted cell is never closed`, 'add the closing double quote (") or remove the stray one');
        // skip anything up to the next delimiter / newline (spaces after a closing quote)
        while (i < n && text[i] !== delimiter && text[i] !== '\n' && text[i] !== '\r') cell += text[i++];
        continue;
      }
      if (ch === delimiter) {
        blank = false;
        cells.push(cell);
        cell = '';
        i++;
        continue;
      }
      if (ch === '\r' || ch === '\n') {
        cells.push(cell);
        if (ch === '\r' && text[i + 1] === '\n') i++;
        i++;
        line++;
        break;
      }
      if (ch !== ' ' && ch !== '\t') blank = false;
      cell += ch;
      i++;
    }
    if (blank && cells.length === 1 && cells[0].trim() === '') continue;
    records.push(cells);
    lines.push(startLine);
  }
  return { records, lines };
}

/** A numeric table read from CSV: x [N, d] plus raw label cells. */
export interface CsvTable {
  header: string[];
  featureNames: string[];
  labelColumns: number[];
  x: Float32Array;
  rows: number;
  labels: string[][];
  lines: number[];
}

function describeColumns(header: string[] | undefined, width: number): string {
  return header ? header.map((h, i) => `${i}: ${h}`).join(', ') : `0..${width - 1}`;
}

function resolveLabelColumns(
  spec: unknown,
  header: string[] | undefined,
  width: number,
  file: string,
  what = 'label',
): number[] {
  if (spec === undefined || spec === null) {
    if (header) {
      const k = header.findIndex((h) => h.trim().toLowerCase() === 'label');
      if (k >= 0) return [k];
    }
    return [width - 1];
  }
  const specs = Array.isArray(spec) ? spec : [spec];
  if (specs.length === 0) throw new UserError(`data.${what}: empty list`, `name at least one ${what} column`);
  return specs.map((s) => {
    if (typeof s === 'number') {
      const k = s < 0 ? width + s : s;
      if (!Number.isInteger(s) || k < 0 || k >= width) {
        throw new UserError(`${file}: ${what} column index ${s} is out of range (the file has ${width} columns)`, `use an index in 0..${width - 1} (negative counts from the end), or a column name`);
      }
      return k;
    }
    if (typeof s === 'string') {
      if (!header) {
        if (/^-?\d+$/.test(s)) return resolveLabelColumns(Number(s), header, width, file, what)[0];
        throw new UserError(`${file}: ${what} column '${s}' named, but the file is read without a header`, 'set data.header: true, or give the label column as an index');
      }
      const k = header.findIndex((h) => h.trim() === s);
      if (k < 0) throw new UserError(`${file}: ${what} column '${s}' not found in the header`, `use one of the columns: ${describeColumns(header, width)}`);
      return k;
    }
    throw new UserError(`data.${what}: expected a column name or index, found ${JSON.stringify(s)}`, `set data.${what} to column names or indices`);
  });
}

const NAN_RE = /^[+-]?nan$/i;
const INF_RE = /^[+-]?(inf|infinity)$/i;

/** Parse a numeric cell; UserError naming file, line and column otherwise. */
export function parseCell(cell: string, file: string, line: number, col: number, colName: string): number {
  const t = cell.trim();
  const at = `${file}: line ${line}, column ${col + 1} (${colName})`;
  if (t === '') throw new UserError(`${at}: missing value (empty cell)`, 'fill in or drop rows with missing values before loading');
  const v = Number(t);
  if (Number.isNaN(v) || NAN_RE.test(t)) {
    if (NAN_RE.test(t)) throw new UserError(`${at}: value is NaN`, 'impute or drop rows with missing values before loading');
    if (INF_RE.test(t)) throw new UserError(`${at}: value is infinite ('${t}')`, 'replace infinite values before loading');
    throw new UserError(`${at}: '${t}' is not a number`, 'feature columns must be numeric: encode categorical columns as numbers, or drop the column');
  }
  if (!Number.isFinite(v)) throw new UserError(`${at}: value is infinite ('${t}')`, 'replace infinite values before loading');
  return v;
}

/** Read a CSV file into a numeric table (label cells kept raw). */
export function readCsvTable(
  path: string,
  opts: { header?: boolean; delimiter?: string; label?: unknown; drop?: unknown; expectHeader?: string[] } = {},
): CsvTable {
  const text = readNonEmpty(path, 'CSV file').toString('utf8');
  const { records, lines } = parseCsv(text, path, opts.delimiter ?? ',');
  if (records.length === 0) throw new UserError(`CSV file is empty: ${path}`, 'check that the file was written completely');
  const hasHeader = opts.header ?? true;
  const header = hasHeader ? records[0].map((h) => h.trim()) : undefined;
  const body = hasHeader ? records.slice(1) : records;
  const bodyLines = hasHeader ? lines.slice(1) : lines;
  if (body.length === 0) throw new UserError(`CSV file ${path} has a header but no data rows`, 'add data rows, or set data.header: false if the first line is data');
  const width = header ? header.length : body[0].length;
  if (opts.expectHeader && header && header.join('\u0000') !== opts.expectHeader.join('\u0000')) {
    throw new UserError(`${path}: header [${header.join(', ')}] differs from the training file's [${opts.expectHeader.join(', ')}]`, 'use the same columns in the same order in the train and test files');
  }
  const labelColumns = resolveLabelColumns(opts.label, header, width, path);
  const isLabel = new Uint8Array(width);
  for (const k of labelColumns) isLabel[k] = 1;
  if (opts.drop !== undefined && opts.drop !== null) {
    if (!Array.isArray(opts.drop)) throw new UserError(`data.drop: expected a list of column names or indices, found ${JSON.stringify(opts.drop)}`, 'e.g. drop: [id]');
    if (opts.drop.length > 0) for (const k of resolveLabelColumns(opts.drop, header, width, path, 'drop')) isLabel[k] = 2;
  }
  const featureCols: number[] = [];
  for (let c = 0; c < width; c++) if (!isLabel[c]) featureCols.push(c);
  if (featureCols.length === 0) throw new UserError(`${path}: no feature columns left after the label and dropped columns`, 'name only the label column(s) in data.label and the ignored ones in data.drop');
  const names = header ?? Array.from({ length: width }, (_, i) => `c${i}`);
  const d = featureCols.length;
  const x = new Float32Array(body.length * d);
  const labels: string[][] = [];
  for (let r = 0; r < body.length; r++) {
    const cells = body[r];
    if (cells.length !== width) {
      throw new UserError(
        `${path}: line ${bodyLines[r]} has ${cells.length} cells, expected ${width} (as ${header ? 'the header' : 'the first row'})`,
        'make every row have the same number of cells (quote cells that contain the delimiter)',
      );
    }
    for (let j = 0; j < d; j++) {
      const c = featureCols[j];
      x[r * d + j] = parseCell(cells[c], path, bodyLines[r], c, names[c]);
    }
    labels.push(labelColumns.map((c) => cells[c].trim()));
  }
  return { header: names, featureNames: featureCols.map((c) => names[c]), labelColumns, x, rows: body.length, labels, lines: bodyLines };
}

/** Per-column z-scoring with statistics from `train` (std 0 → 1). Mutates both arrays. */
export function standardizeColumns(train: Float32Array, others: Float32Array[], d: number): { mean: number[]; std: number[] } {
  const n = train.length / d;
  const mean = new Array<number>(d).fill(0);
  const std = new Array<number>(d).fill(0);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += train[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= Math.max(1, n);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) std[j] += (train[i * d + j] - mean[j]) ** 2;
  for (let j = 0; j < d; j++) {
    std[j] = Math.sqrt(std[j] / Math.max(1, n));
    if (!(std[j] > 1e-12)) std[j] = 1;
  }
  for (const a of [train, ...others]) for (let i = 0; i < a.length; i++) a[i] = (a[i] - mean[i % d]) / std[i % d];
  return { mean, std };
}

/**
 * Build a tabular data set from a train table and either a test table or a seeded split. Shared by `csv` and
 * `builtin`.
 */
export function tabularDataset(
  name: string,
  task: Task,
  train: CsvTable,
  test: CsvTable | undefined,
  testFraction: number,
  seed: number,
  extra: { classes?: string[]; classNames?: string[]; standardize?: boolean; meta?: Record<string, unknown> } = {},
): Dataset {
  const d = train.featureNames.length;
  const wTrain = (i: number, j: number) => `${train.lines[i] !== undefined ? `line ${train.lines[i]}` : `row ${i}`}, label column ${train.header[train.labelColumns[j]]}`;
  const wTest = (i: number, j: number) => `test file line ${test?.lines[i]}, label column ${test?.header[test.labelColumns[j]]}`;
  const enc = encodeBoth(task, train.labels, test?.labels ?? [], wTrain, wTest, extra.classes);
  let trainSplit: DatasetSplit;
  let testSplit: DatasetSplit;
  const lw = task === 'regression' ? enc.numOutputs : 1;
  if (test) {
    trainSplit = { inputs: { x: { data: train.x, shape: [train.rows, d] } }, labels: enc.train };
    testSplit = { inputs: { x: { data: test.x, shape: [test.rows, d] } }, labels: enc.test };
  } else {
    const full = { inputs: { x: { data: train.x, shape: [train.rows, d] } }, labels: enc.train, labelWidth: lw };
    const idx = splitIndices(train.rows, testFraction, seed);
    trainSplit = subset(full, idx.train);
    testSplit = subset(full, idx.test);
  }
  let stats: { mean: number[]; std: number[] } | undefined;
  if (extra.standardize) {
    stats = standardizeColumns(trainSplit.inputs.x.data as Float32Array, [testSplit.inputs.x.data as Float32Array], d);
  }
  return {
    name,
    task,
    modality: 'tabular',
    numOutputs: enc.numOutputs,
    classNames: task === 'classification' ? (extra.classNames && extra.classNames.length === enc.numOutputs ? extra.classNames : enc.classNames) : undefined,
    featureNames: train.featureNames,
    train: trainSplit,
    test: testSplit,
    meta: { ...extra.meta, split: test ? 'test file' : testFraction, seed, ...(stats ? { standardize: stats } : {}) },
  };
}

/**
 * `data: {use: csv, path, label?, drop?: [columns], header?: true, delimiter?: ',', split?: 0.2, test?: {path}, classes?,
 * standardize?}`.
 * `label` is a column name or index (negative from the end; a list for multi-output regression); default: the
 * column named `label`, else the last column. `drop` names columns to ignore (ids). All other columns are numeric
 * features. `standardize: true` z-scores features with training-split statistics.
 */
export const csvLoader: DataLoader = {
  name: 'csv',
  async load(options: DataLoaderOptions): Promise<Dataset> {
    const path = resolvePath(options, reqString(options, 'path'));
    const header = optBool(options, 'header', true);
    const delimiter = optString(options, 'delimiter', ',')!;
    const task = options.task ?? 'classification';
    const train = readCsvTable(path, { header, delimiter, label: options.label, drop: options.drop });
    let test: CsvTable | undefined;
    if (options.test !== undefined) {
      const t = options.test as Record<string, unknown>;
      if (!t || typeof t !== 'object') throw new UserError(`data.test: expected {path: FILE}, found ${JSON.stringify(options.test)}`, 'set data.test: {path: test.csv}');
      const tpath = resolvePath(options, reqString(t, 'path', 'data.test'));
      test = readCsvTable(tpath, { header, delimiter, label: options.label, drop: options.drop, expectHeader: header ? train.header : undefined });
      if (!header && test.header.length !== train.header.length) {
        throw new UserError(`${tpath}: has ${test.header.length} columns but the training file has ${train.header.length}`, 'use the same columns in the train and test files');
      }
    }
    return tabularDataset(String(options.name ?? path.split(/[\\/]/).pop()), task, train, test, splitFraction(options), options.seed ?? 0, {
      classes: optClasses(options),
      standardize: optBool(options, 'standardize', false),
      meta: { source: path, ...(test ? { testSource: resolvePath(options, (options.test as { path: string }).path) } : {}) },
    });
  },
};
