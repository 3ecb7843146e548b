import { existsSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parseCsv, readImage, readNpy, sizeOf, UserError, type Inputs, type Pipeline } from '@sop/core';

/**
 * Read user inputs for `sop explain --input FILE`, shaped like the pipeline's data:
 * .json (a row, a list of rows, or {x: ...}), .npy, .csv (numeric rows, no header or a header of feature names),
 * .png/.jpg (image pipelines: resized to the data's size, scaled to [0, 1]), .txt/.jsonl (text pipelines: one text per
 * line or {text, text_pair}; encoded by the backbone's tokenizer).
 */
export async function readInputFile(file: string, pipeline: Pipeline): Promise<Inputs> {
  if (!existsSync(file)) throw new UserError(`--input file not found: ${file}`, 'pass an existing .json/.npy/.csv/.png/.jpg/.txt/.jsonl file');
  const rowShape = pipeline.dataset.train.inputs.x.shape.slice(1);
  const rowSize = sizeOf(rowShape);
  const ext = extname(file).toLowerCase();
  const fromFloats = (values: ArrayLike<number>, what: string): Inputs => {
    if (values.length === 0 || values.length % rowSize !== 0) {
      throw new UserError(`${file}: ${what} has ${values.length} values, not a multiple of one input's ${rowSize} ([${rowShape.join(', ')}])`, `give rows shaped like the training data: [${rowShape.join(', ')}]`);
    }
    const data = Float32Array.from(values);
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) throw new UserError(`${file}: value ${i} is ${data[i]}`, 'inputs must be finite numbers');
    }
    if (pipeline.dataset.train.inputs.x.data instanceof BigInt64Array) {
      return { x: { data: BigInt64Array.from(Array.from(data, (v) => BigInt(Math.round(v)))), shape: [data.length / rowSize, ...rowShape] } };
    }
    return { x: { data, shape: [data.length / rowSize, ...rowShape] } };
  };
  if (ext === '.json') {
    let v: unknown;
    try {
      v = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new UserError(`${file}: not valid JSON: ${(e as Error).message}`, 'fix the JSON syntax');
    }
    if (v && typeof v === 'object' && !Array.isArray(v) && 'x' in v) v = (v as { x: unknown }).x;
    const flat = (Array.isArray(v) ? (v as unknown[]).flat(Infinity) : []) as unknown[];
    if (!flat.length || !flat.every((n) => typeof n === 'number')) throw new UserError(`${file}: expected a (nested) list of numbers or {"x": [...]}`, 'e.g. [[0.1, 0.2, ...]]');
    return fromFloats(flat as number[], 'the JSON');
  }
  if (ext === '.npy') {
    const a = readNpy(file, '--input');
    return fromFloats(a.values ?? Array.from(a.ints ?? [], Number), 'the array');
  }
  if (ext === '.csv') {
    const rows = parseCsv(readFileSync(file, 'utf8'), file).records;
    const body = rows.filter((r) => r.some((c) => c.trim() !== '')).filter((r, i) => !(i === 0 && r.some((c) => c.trim() !== '' && Number.isNaN(Number(c)))));
    return fromFloats(body.flat().map(Number), 'the CSV');
  }
  if (['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff'].includes(ext)) {
    if (rowShape.length !== 3) throw new UserError(`${file}: an image input, but this pipeline's inputs are [${rowShape.join(', ')}]`, 'pass a .json/.npy/.csv row instead');
    const [c, h, w] = rowShape;
    const img = await readImage(file, { channels: c === 3 ? 3 : 1, size: [h, w] });
    return fromFloats(img.data, 'the image');
  }
  if (ext === '.txt' || ext === '.jsonl') {
    const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim());
    const texts: string[] = [];
    const pairs: string[] = [];
    for (const l of lines) {
      if (ext === '.jsonl') {
        const o = JSON.parse(l) as { text: string; text_pair?: string };
        texts.push(o.text);
        if (o.text_pair) pairs.push(o.text_pair);
      } else texts.push(l);
    }
    if (!pipeline.backbone.encode) throw new UserError(`${file}: text input needs a backbone with a tokenizer (backbone: {use: hf})`, 'pass token ids as .json/.npy instead');
    const enc = await pipeline.backbone.encode({ inputs: pipeline.dataset.test.inputs, labels: new Float32Array(texts.length), texts, ...(pairs.length ? { textPairs: pairs } : {}) });
    return enc.inputs;
  }
  throw new UserError(`--input ${file}: unsupported file type '${ext}'`, 'use .json, .npy, .csv, .png/.jpg, .txt or .jsonl');
}
