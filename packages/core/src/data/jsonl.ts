import type { DataLoader, DataLoaderOptions, Dataset, DatasetSplit } from '../dataset.js';
import { UserError } from '../errors.js';
import { encodeBoth, optClasses } from './labels.js';
import { optString, readNonEmpty, reqString, resolvePath, splitFraction } from './options.js';
import { splitIndices, subset, type FullData } from './split.js';

export interface JsonlRecords {
  texts: string[];
  textPairs?: string[];
  labels: Array<string | number>;
  rationales?: Array<Array<[number, number]>>;
  lines: number[];
}

export interface JsonlFields {
  text: string;
  textPair: string;
  label: string;
  rationale: string;
}

function spansOf(value: unknown, text: string, at: string): Array<[number, number]> {
  const bad = () =>
    new UserError(`${at}: rationale must be [[start, end], ...] character spans or a substring of the text, found ${JSON.stringify(value)}`, 'fix the rationale field');
  if (typeof value === 'string') return [substringSpan(value, text, at)];
  if (!Array.isArray(value)) throw bad();
  if (value.length === 2 && value.every((v) => typeof v === 'number')) value = [value];
  return (value as unknown[]).map((s) => {
    if (typeof s === 'string') return substringSpan(s, text, at);
    if (!Array.isArray(s) || s.length !== 2 || !s.every((v) => Number.isInteger(v))) throw bad();
    const [a, b] = s as [number, number];
    if (a < 0 || b > text.length || a >= b) {
      throw new UserError(`${at}: rationale span [${a}, ${b}] is outside the text (length ${text.length}) or empty`, 'spans are [start, end) character offsets with 0 ≤ start < end ≤ text length');
    }
    return [a, b] as [number, number];
  });
}

function substringSpan(sub: string, text: string, at: string): [number, number] {
  const k = text.indexOf(sub);
  if (sub.length === 0 || k < 0) throw new UserError(`${at}: rationale ${JSON.stringify(sub)} does not occur in the text`, 'give a substring of the text or [start, end] character spans');
  return [k, k + sub.length];
}

/** Parse JSON Lines; every error names the file and line. */
export function parseJsonl(text: string, file: string, fields: JsonlFields): JsonlRecords {
  const texts: string[] = [];
  const pairs: string[] = [];
  const labels: Array<string | number> = [];
  const rats: Array<Array<[number, number]>> = [];
  const lines: number[] = [];
  let anyPair = false;
  let anyRat = false;
  const rows = text.split(/\r?\n/);
  for (let i = 0; i < rows.length; i++) {
    const raw = rows[i].trim();
    if (raw === '') continue;
    const at = `${file}: line ${i + 1}`;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (e) {
      throw new UserError(`${at}: invalid JSON (${(e as Error).message})`, 'write one JSON object per line');
    }
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new UserError(`${at}: expected a JSON object, found ${raw.slice(0, 40)}`, 'write one JSON object per line');
    const o = obj as Record<string, unknown>;
    const t = o[fields.text];
    if (typeof t !== 'string') throw new UserError(`${at}: field '${fields.text}' is ${t === undefined ? 'missing' : 'not a string'}`, `give every line a "${fields.text}" string (or set data.textField)`);
    const l = o[fields.label];
    if (typeof l !== 'string' && typeof l !== 'number') {
      throw new UserError(`${at}: field '${fields.label}' is ${l === undefined ? 'missing' : `not a number or string (${JSON.stringify(l)})`}`, `give every line a "${fields.label}" (class index or name), or set data.labelField`);
    }
    const p = o[fields.textPair];
    if (p !== undefined && p !== null && typeof p !== 'string') throw new UserError(`${at}: field '${fields.textPair}' is not a string`, 'make the text pair a string or drop it');
    if (typeof p === 'string') anyPair = true;
    const r = o[fields.rationale];
    let spans: Array<[number, number]> = [];
    if (r !== undefined && r !== null) {
      anyRat = true;
      spans = spansOf(r, t, at);
    }
    texts.push(t);
    pairs.push(typeof p === 'string' ? p : '');
    labels.push(l);
    rats.push(spans);
    lines.push(i + 1);
  }
  if (texts.length === 0) throw new UserError(`JSONL file ${file} holds no records`, 'write one JSON object per line');
  return { texts, textPairs: anyPair ? pairs : undefined, labels, rationales: anyRat ? rats : undefined, lines };
}

/** Read a JSONL file; missing/empty files are UserErrors naming it. */
export function readJsonl(path: string, fields: JsonlFields): JsonlRecords {
  return parseJsonl(readNonEmpty(path, 'JSONL file').toString('utf8'), path, fields);
}

function toFull(r: JsonlRecords, labels: Float32Array, labelWidth: number): FullData {
  const n = r.texts.length;
  return {
    // Placeholder until a tokenizer-owning backbone encodes `texts` (Backbone.encode): one int64 zero per row.
    inputs: { x: { data: new BigInt64Array(n), shape: [n, 1] } },
    labels,
    labelWidth,
    texts: r.texts,
    textPairs: r.textPairs,
    rationales: r.rationales,
  };
}

/**
 * `data: {use: jsonl, path, split?: 0.2, test?: {path}, classes?, textField?: text, textPairField?: text_pair,
 * labelField?: label, rationaleField?: rationale}`. One JSON object per line: `text`, optional `text_pair`, `label`
 * (class index, or class name → index in sorted order unless `classes` fixes it; a number for task: regression),
 * optional `rationale` as [[start, end], ...] character spans or a substring of `text`.
 *
 * `inputs.x` is a placeholder (int64 zeros [N, 1]): a tokenizer-owning backbone encodes `texts`/`textPairs` into
 * input_ids, attention_mask and token_type_ids (Backbone.encode) before any model sees them.
 */
export const jsonlLoader: DataLoader = {
  name: 'jsonl',
  async load(options: DataLoaderOptions): Promise<Dataset> {
    const task = options.task ?? 'classification';
    const fields: JsonlFields = {
      text: optString(options, 'textField', 'text')!,
      textPair: optString(options, 'textPairField', 'text_pair')!,
      label: optString(options, 'labelField', 'label')!,
      rationale: optString(options, 'rationaleField', 'rationale')!,
    };
    const path = resolvePath(options, reqString(options, 'path'));
    const train = readJsonl(path, fields);
    let test: JsonlRecords | undefined;
    let testPath: string | undefined;
    if (options.test !== undefined) {
      if (!options.test || typeof options.test !== 'object') throw new UserError('data.test: expected {path: FILE}', 'set data.test: {path: test.jsonl}');
      testPath = resolvePath(options, reqString(options.test as Record<string, unknown>, 'path', 'data.test'));
      test = readJsonl(testPath, fields);
    }
    const enc = encodeBoth(
      task,
      train.labels.map((l) => [l]),
      (test?.labels ?? []).map((l) => [l]),
      (i) => `${path}: line ${train.lines[i]}`,
      (i) => `${testPath}: line ${test!.lines[i]}`,
      optClasses(options),
    );
    const lw = task === 'regression' ? enc.numOutputs : 1;
    let trainSplit: DatasetSplit;
    let testSplit: DatasetSplit;
    const testFraction = splitFraction(options);
    if (test) {
      const all = (n: number) => Array.from({ length: n }, (_, i) => i);
      trainSplit = subset(toFull(train, enc.train, lw), all(train.texts.length));
      testSplit = subset(toFull(test, enc.test, lw), all(test.texts.length));
      if (!!train.textPairs !== !!test.textPairs) {
        throw new UserError(`${train.textPairs ? testPath : path}: has no text pairs but the other file has`, 'give text_pair in both files or in neither');
      }
    } else {
      const idx = splitIndices(train.texts.length, testFraction, options.seed ?? 0);
      const full = toFull(train, enc.train, lw);
      trainSplit = subset(full, idx.train);
      testSplit = subset(full, idx.test);
    }
    return {
      name: String(options.name ?? 'jsonl'),
      task,
      modality: 'text',
      numOutputs: enc.numOutputs,
      classNames: enc.classNames,
      train: trainSplit,
      test: testSplit,
      meta: { source: path, ...(testPath ? { testSource: testPath } : { split: testFraction }), seed: options.seed ?? 0, encoding: 'placeholder' },
    };
  },
};
