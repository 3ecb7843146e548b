import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadDataset, DATA_LOADERS } from '../src/data/loaders.js';
import { parseCsv } from '../src/data/csv.js';
import { encodeNpy, parseNpy } from '../src/data/npy.js';
import { UserError } from '../src/errors.js';
import { createContainer, listPlugins, resolvePlugin } from '../src/di/container.js';
import { coreModule } from '../src/module.js';
import type { DataLoader } from '../src/dataset.js';

let dir: string;
const w = (name: string, content: string | Uint8Array) => {
  const p = join(dir, name);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, content);
  return p;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sop-data-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function userError(p: Promise<unknown>): Promise<UserError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return e as UserError;
  }
  throw new Error('expected a UserError');
}

describe('parseCsv', () => {
  it('handles quotes, embedded delimiters/newlines, CRLF, BOM and blank lines', () => {
    const r = parseCsv('\ufeffa,b\r\n"x, y","he said ""hi"""\r\n\r\n"multi\nline",2\n', 'f.csv');
    expect(r.records).toEqual([['a', 'b'], ['x, y', 'he said "hi"'], ['multi\nline', '2']]);
    expect(r.lines).toEqual([1, 2, 4]);
    expect(() => parseCsv('a,"b\n', 'f.csv')).toThrow(/line 1: a quoted cell is never closed/);
  });
});

describe('csv loader', () => {
  it('reads features and a named label column; seeded 80/20 split', async () => {
    const rows = ['a,b,label,c'];
    for (let i = 0; i < 10; i++) rows.push(`${i},${i * 2},${i % 2 ? 'yes' : 'no'},${-i}`);
    w('t.csv', rows.join('\n') + '\n');
    const ds = await loadDataset({ use: 'csv', path: 't.csv', baseDir: dir, seed: 1 });
    expect(ds.featureNames).toEqual(['a', 'b', 'c']);
    expect(ds.classNames).toEqual(['no', 'yes']);
    expect(ds.numOutputs).toBe(2);
    expect(ds.train.inputs.x.shape).toEqual([8, 3]);
    expect(ds.test.inputs.x.shape).toEqual([2, 3]);
    // every row keeps its label: b = 2a, c = -a, label = a odd
    for (const s of [ds.train, ds.test]) {
      const x = s.inputs.x.data as Float32Array;
      for (let i = 0; i < s.labels.length; i++) {
        expect(x[i * 3 + 1]).toBe(2 * x[i * 3]);
        expect(x[i * 3 + 2] + x[i * 3]).toBe(0);
        expect(s.labels[i]).toBe(x[i * 3] % 2);
      }
    }
    const again = await loadDataset({ use: 'csv', path: 't.csv', baseDir: dir, seed: 1 });
    expect(again.test.inputs.x.data).toEqual(ds.test.inputs.x.data);
    // label by index, no header
    w('nh.csv', '1,2,0\n3,4,1\n5,6,1\n');
    const nh = await loadDataset({ use: 'csv', path: 'nh.csv', header: false, label: 0, split: 0, baseDir: dir });
    expect(nh.featureNames).toEqual(['c1', 'c2']);
    expect(Array.from(nh.train.labels)).toEqual([1, 3, 5]);
    expect(nh.numOutputs).toBe(6);
    // separate test file; regression
    w('tr.csv', 'x,y\n1,0.5\n2,1.5\n');
    w('te.csv', 'x,y\n3,2.5\n');
    const reg = await loadDataset({ use: 'csv', path: 'tr.csv', test: { path: 'te.csv' }, label: 'y', task: 'regression', baseDir: dir });
    expect(reg.numOutputs).toBe(1);
    expect(Array.from(reg.train.labels)).toEqual([0.5, 1.5]);
    expect(Array.from(reg.test.labels)).toEqual([2.5]);
    expect(Array.from(reg.test.inputs.x.data as Float32Array)).toEqual([3]);
  });

  it('names file, line and column for malformed files', async () => {
    const cases: Array<[string, string, Record<string, unknown>, RegExp]> = [
      ['ragged.csv', 'a,b,label\n1,2,0\n3,0\n', {}, /ragged\.csv: line 3 has 2 cells, expected 3/],
      ['text.csv', 'a,b,label\n1,2,0\n3,abc,1\n', {}, /text\.csv: line 3, column 2 \(b\): 'abc' is not a number/],
      ['nan.csv', 'a,b,label\n1,NaN,0\n', {}, /nan\.csv: line 2, column 2 \(b\): value is NaN/],
      ['inf.csv', 'a,b,label\n1,2,0\ninf,2,1\n', {}, /inf\.csv: line 3, column 1 \(a\): value is infinite/],
      ['missing.csv', 'a,b,label\n1,,0\n', {}, /missing\.csv: line 2, column 2 \(b\): missing value/],
      ['empty.csv', '', {}, /CSV file is empty: .*empty\.csv/],
      ['blank.csv', '\n\n', {}, /CSV file is empty/],
      ['hdr.csv', 'a,b,label\n', {}, /has a header but no data rows/],
      ['lab.csv', 'a,b,label\n1,2,0\n', { label: 'target' }, /label column 'target' not found in the header/],
      ['idx.csv', 'a,b,label\n1,2,0\n', { label: 7 }, /label column index 7 is out of range \(the file has 3 columns\)/],
    ];
    for (const [name, content, extra, re] of cases) {
      w(name, content);
      const e = await userError(loadDataset({ use: 'csv', path: name, baseDir: dir, ...extra }));
      expect(e.message).toMatch(re);
      expect(e.fix).toBeTruthy();
    }
    const e = await userError(loadDataset({ use: 'csv', path: 'nope.csv', baseDir: dir }));
    expect(e.message).toMatch(/CSV file not found: .*nope\.csv/);
    const lab = await userError(loadDataset({ use: 'csv', path: 'lab.csv', baseDir: dir, label: 'target' }));
    expect(lab.fix).toMatch(/0: a, 1: b, 2: label/);
    w('te2.csv', 'a,c,label\n1,2,0\n');
    w('tr2.csv', 'a,b,label\n1,2,0\n');
    const hdr = await userError(loadDataset({ use: 'csv', path: 'tr2.csv', test: { path: 'te2.csv' }, baseDir: dir }));
    expect(hdr.message).toMatch(/differs from the training file/);
  });

  it('drop ignores columns', async () => {
    w('drop.csv', 'id,a,label\nx1,1,0\nx2,2,1\n');
    const ds = await loadDataset({ use: 'csv', path: 'drop.csv', drop: ['id'], split: 0, baseDir: dir });
    expect(ds.featureNames).toEqual(['a']);
    expect(Array.from(ds.train.inputs.x.data as Float32Array)).toEqual([1, 2]);
    expect((await userError(loadDataset({ use: 'csv', path: 'drop.csv', drop: ['ID'], baseDir: dir }))).message).toMatch(/drop column 'ID' not found/);
    expect((await userError(loadDataset({ use: 'csv', path: 'drop.csv', baseDir: dir }))).message).toMatch(/line 2, column 1 \(id\): 'x1' is not a number/);
  });

  it('standardize uses training statistics', async () => {
    w('st.csv', 'a,label\n1,0\n3,1\n');
    const ds = await loadDataset({ use: 'csv', path: 'st.csv', split: 0, standardize: true, baseDir: dir });
    expect(Array.from(ds.train.inputs.x.data as Float32Array)).toEqual([-1, 1]);
  });
});

describe('npy', () => {
  it('parses every supported dtype and both endians', () => {
    const f = parseNpy(encodeNpy(new Float32Array([1.5, -2, 3, 4, 5, 6]), [2, 3]));
    expect(f.dtype).toBe('float32');
    expect(f.shape).toEqual([2, 3]);
    expect(Array.from(f.values!)).toEqual([1.5, -2, 3, 4, 5, 6]);
    expect(Array.from(parseNpy(encodeNpy(new Float64Array([0.1, 2]), [2])).values!)).toEqual([0.1, 2]);
    expect(Array.from(parseNpy(encodeNpy(new Int32Array([-7, 9]), [2, 1])).values!)).toEqual([-7, 9]);
    expect(Array.from(parseNpy(encodeNpy(new BigInt64Array([1n, -2n]), [2])).ints!)).toEqual([1n, -2n]);
    expect(Array.from(parseNpy(encodeNpy(new Uint8Array([0, 255]), [2])).values!)).toEqual([0, 255]);
    // hand-built big-endian float64, format 2.0 header
    const header = "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }";
    const buf = new Uint8Array(12 + header.length + 16);
    buf.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0]);
    const dv = new DataView(buf.buffer);
    dv.setUint32(8, header.length, true);
    for (let i = 0; i < header.length; i++) buf[12 + i] = header.charCodeAt(i);
    dv.setFloat64(12 + header.length, 3.25, false);
    dv.setFloat64(20 + header.length, -1, false);
    expect(Array.from(parseNpy(buf).values!)).toEqual([3.25, -1]);
    expect(() => parseNpy(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))).toThrow(/bad magic/);
    const fortran = encodeNpy(new Float32Array(4), [2, 2]);
    const s = new TextDecoder('latin1').decode(fortran).replace("'fortran_order': False", "'fortran_order': True ");
    expect(() => parseNpy(Uint8Array.from(s, (c) => c.charCodeAt(0)))).toThrow(/Fortran/);
    expect(() => parseNpy(encodeNpy(new Float32Array(6), [2, 3]).subarray(0, 100))).toThrow(/truncated|needs 24/);
  });

  it('loads x.npy/y.npy, keeps int64 ids, checks shapes', async () => {
    const x = new Float32Array(5 * 2 * 2);
    for (let i = 0; i < x.length; i++) x[i] = i;
    w('np/x.npy', encodeNpy(x, [5, 2, 2]));
    w('np/y.npy', encodeNpy(new Float64Array([0, 1, 2, 1, 0]), [5]));
    const ds = await loadDataset({ use: 'npy', path: 'np', split: 0.4, baseDir: dir, seed: 3 });
    expect(ds.modality).toBe('map');
    expect(ds.numOutputs).toBe(3);
    expect(ds.train.inputs.x.shape).toEqual([3, 2, 2]);
    expect(ds.test.inputs.x.shape).toEqual([2, 2, 2]);
    const tx = ds.train.inputs.x.data as Float32Array;
    const ylist = [0, 1, 2, 1, 0];
    for (let i = 0; i < 3; i++) expect(ds.train.labels[i]).toBe(ylist[tx[i * 4] / 4]);
    w('ids/x.npy', encodeNpy(new BigInt64Array([101n, 7n, 102n, 101n, 9n, 102n]), [2, 3]));
    w('ids/y.npy', encodeNpy(new BigInt64Array([1n, 0n]), [2]));
    const ids = await loadDataset({ use: 'npy', x: 'ids/x.npy', y: 'ids/y.npy', split: 0, baseDir: dir });
    expect(ids.modality).toBe('text');
    expect(ids.train.inputs.x.data).toBeInstanceOf(BigInt64Array);
    w('seg/s.npy', encodeNpy(new BigInt64Array([0n, 1n, 1n, 0n, 2n, 2n, 2n, 2n]), [2, 2, 2]));
    const withSeg = await loadDataset({ use: 'npy', x: 'ids/x.npy', y: 'ids/y.npy', aux: { segments: 'seg/s.npy' }, split: 0.5, seed: 0, baseDir: dir });
    const row = withSeg.test.inputs.x.data[0] === 101n && withSeg.test.inputs.x.data[1] === 7n ? 0 : 1;
    expect(withSeg.test.inputs.segments.shape).toEqual([1, 2, 2]);
    expect(Array.from(withSeg.test.inputs.segments.data as BigInt64Array)).toEqual(row === 0 ? [0n, 1n, 1n, 0n] : [2n, 2n, 2n, 2n]);
    w('seg/bad.npy', encodeNpy(new BigInt64Array(4), [1, 2, 2]));
    expect((await userError(loadDataset({ use: 'npy', x: 'ids/x.npy', y: 'ids/y.npy', aux: { segments: 'seg/bad.npy' }, baseDir: dir }))).message).toMatch(/bad\.npy: holds 1 rows/);
    w('bad/x.npy', encodeNpy(new Float32Array(6), [3, 2]));
    w('bad/y.npy', encodeNpy(new Int32Array([0, 1]), [2]));
    const e = await userError(loadDataset({ use: 'npy', path: 'bad', baseDir: dir }));
    expect(e.message).toMatch(/y\.npy: holds 2 labels .* but .*x\.npy holds 3 rows/);
    w('frac/x.npy', encodeNpy(new Float32Array(2), [2, 1]));
    w('frac/y.npy', encodeNpy(new Float32Array([0.5, 1]), [2]));
    expect((await userError(loadDataset({ use: 'npy', path: 'frac', baseDir: dir }))).message).toMatch(/label 0.5 at row 0 is not a class index/);
    const reg = await loadDataset({ use: 'npy', path: 'frac', baseDir: dir, task: 'regression', split: 0 });
    expect(Array.from(reg.train.labels)).toEqual([0.5, 1]);
    w('nan/x.npy', encodeNpy(new Float32Array([1, NaN]), [2, 1]));
    w('nan/y.npy', encodeNpy(new Int32Array([0, 1]), [2]));
    expect((await userError(loadDataset({ use: 'npy', path: 'nan', baseDir: dir }))).message).toMatch(/x\.npy: row 1 .* is NaN/);
    w('empty/x.npy', '');
    expect((await userError(loadDataset({ use: 'npy', path: 'empty', baseDir: dir }))).message).toMatch(/is empty: .*x\.npy/);
    expect((await userError(loadDataset({ use: 'npy', path: 'none', baseDir: dir }))).message).toMatch(/not found: .*none\/x\.npy/);
  });
});

describe('images loader', () => {
  beforeAll(async () => {
    // 2 classes × 2 images, 4×6 RGB; pixel value encodes the image
    const mk = async (p: string, v: number, wdt = 6, hgt = 4) => {
      const raw = Buffer.alloc(wdt * hgt * 3);
      for (let i = 0; i < wdt * hgt; i++) {
        raw[i * 3] = v;
        raw[i * 3 + 1] = 255 - v;
        raw[i * 3 + 2] = i * 10;
      }
      mkdirSync(join(p, '..'), { recursive: true });
      await sharp(raw, { raw: { width: wdt, height: hgt, channels: 3 } }).png().toFile(p);
    };
    await mk(join(dir, 'img/cat/a.png'), 10);
    await mk(join(dir, 'img/cat/b.png'), 20);
    await mk(join(dir, 'img/dog/c.png'), 30);
    await mk(join(dir, 'img/dog/d.png'), 40);
    await mk(join(dir, 'odd/cat/a.png'), 10);
    // a JPEG and a grayscale PNG in one more folder
    mkdirSync(join(dir, 'mixed/a'), { recursive: true });
    mkdirSync(join(dir, 'mixed/b'), { recursive: true });
    await sharp(Buffer.alloc(4 * 6 * 3, 200), { raw: { width: 6, height: 4, channels: 3 } }).jpeg({ quality: 100 }).toFile(join(dir, 'mixed/a/x.JPG'));
    await sharp(Buffer.alloc(4 * 6, 51), { raw: { width: 6, height: 4, channels: 1 } }).png().toFile(join(dir, 'mixed/b/y.png'));
    await mk(join(dir, 'odd/dog/b.png'), 10, 5, 5);
    // masks: left half white
    for (const rel of ['cat/a', 'cat/b', 'dog/c', 'dog/d']) {
      const m = Buffer.alloc(24);
      for (let r = 0; r < 4; r++) for (let c = 0; c < 3; c++) m[r * 6 + c] = 255;
      mkdirSync(join(dir, 'masks', rel, '..'), { recursive: true });
      await sharp(m, { raw: { width: 6, height: 4, channels: 1 } }).png().toFile(join(dir, 'masks', rel + '.png'));
    }
  });

  it('reads class folders as [N, C, H, W] in [0, 1] with masks', async () => {
    const ds = await loadDataset({ use: 'images', path: 'img', masks: 'masks', split: 0, baseDir: dir });
    expect(ds.classNames).toEqual(['cat', 'dog']);
    expect(ds.modality).toBe('image');
    expect(ds.train.inputs.x.shape).toEqual([4, 3, 4, 6]);
    expect(Array.from(ds.train.labels)).toEqual([0, 0, 1, 1]);
    const x = ds.train.inputs.x.data as Float32Array;
    // image 2 (dog/c, v=30): channel 0 = 30/255, channel 1 = 225/255, channel 2 pixel 5 = 50/255
    expect(x[2 * 72]).toBeCloseTo(30 / 255, 6);
    expect(x[2 * 72 + 24]).toBeCloseTo(225 / 255, 6);
    expect(x[2 * 72 + 48 + 5]).toBeCloseTo(50 / 255, 6);
    expect(ds.train.inputMasks!.shape).toEqual([4, 4, 6]);
    expect(Array.from(ds.train.inputMasks!.data.subarray(0, 6))).toEqual([1, 1, 1, 0, 0, 0]);
    const gray = await loadDataset({ use: 'images', path: 'img', color: 'grayscale', size: [2, 3], mean: 0.5, std: 0.25, split: 0.5, baseDir: dir });
    expect(gray.train.inputs.x.shape).toEqual([2, 1, 2, 3]);
    const gx = gray.train.inputs.x.data as Float32Array;
    expect(Math.max(...gx)).toBeLessThanOrEqual(2 + 1e-6);
    expect(Math.min(...gx)).toBeGreaterThanOrEqual(-2 - 1e-6);
  });

  it('reads JPEG and grayscale PNG as RGB', async () => {
    const ds = await loadDataset({ use: 'images', path: 'mixed', split: 0, baseDir: dir });
    expect(ds.train.inputs.x.shape).toEqual([2, 3, 4, 6]);
    const x = ds.train.inputs.x.data as Float32Array;
    expect(Math.abs(x[0] - 200 / 255)).toBeLessThan(3 / 255);
    for (let c = 0; c < 3; c++) expect(x[72 + c * 24]).toBeCloseTo(51 / 255, 6);
  });

  it('errors: size mismatch without size, missing mask, missing folder', async () => {
    expect((await userError(loadDataset({ use: 'images', path: 'odd', baseDir: dir }))).message).toMatch(/b\.png is 5×5 but .*a\.png is 4×6/);
    const fixed = await loadDataset({ use: 'images', path: 'odd', size: [4, 4], split: 0, baseDir: dir });
    expect(fixed.train.inputs.x.shape).toEqual([2, 3, 4, 4]);
    expect((await userError(loadDataset({ use: 'images', path: 'odd', masks: 'masks', size: [4, 4], baseDir: dir }))).message).toMatch(/mask for image .*odd\/dog\/b\.png not found/);
    expect((await userError(loadDataset({ use: 'images', path: 'nofolder', baseDir: dir }))).message).toMatch(/not found: .*nofolder/);
    w('bad/cls/x.png', 'not a png');
    expect((await userError(loadDataset({ use: 'images', path: 'bad', baseDir: dir }))).message).toMatch(/cannot decode image .*x\.png/);
  });
});

describe('jsonl loader', () => {
  it('reads texts, pairs, string labels and rationales (spans or substring)', async () => {
    w(
      'a.jsonl',
      [
        JSON.stringify({ text: 'a great film', label: 'pos', rationale: 'great' }),
        '',
        JSON.stringify({ text: 'an awful plot', text_pair: 'q?', label: 'neg', rationale: [[3, 8]] }),
        JSON.stringify({ text: 'meh', label: 'neg' }),
      ].join('\n'),
    );
    const ds = await loadDataset({ use: 'jsonl', path: 'a.jsonl', split: 0, baseDir: dir });
    expect(ds.modality).toBe('text');
    expect(ds.classNames).toEqual(['neg', 'pos']);
    expect(Array.from(ds.train.labels)).toEqual([1, 0, 0]);
    expect(ds.train.texts).toEqual(['a great film', 'an awful plot', 'meh']);
    expect(ds.train.textPairs).toEqual(['', 'q?', '']);
    expect(ds.train.rationales).toEqual([[[2, 7]], [[3, 8]], []]);
    expect(ds.train.inputs.x.shape).toEqual([3, 1]);
    const fixed = await loadDataset({ use: 'jsonl', path: 'a.jsonl', split: 0, classes: ['pos', 'neg'], baseDir: dir });
    expect(Array.from(fixed.train.labels)).toEqual([0, 1, 1]);
  });

  it('names file and line for malformed records', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['j1.jsonl', '{"text": "a", "label": 0}\n{"text": "b", label: 1}\n', /j1\.jsonl: line 2: invalid JSON/],
      ['j2.jsonl', '{"text": "a"}\n', /j2\.jsonl: line 1: field 'label' is missing/],
      ['j3.jsonl', '{"label": 1}\n', /j3\.jsonl: line 1: field 'text' is missing/],
      ['j4.jsonl', '{"text": "abc", "label": 1, "rationale": [[1, 9]]}\n', /line 1: rationale span \[1, 9\] is outside the text/],
      ['j5.jsonl', '{"text": "abc", "label": 1, "rationale": "zz"}\n', /line 1: rationale "zz" does not occur/],
      ['j6.jsonl', '\n\n', /holds no records/],
      ['j7.jsonl', '', /is empty/],
    ];
    for (const [name, content, re] of cases) {
      w(name, content);
      expect((await userError(loadDataset({ use: 'jsonl', path: name, baseDir: dir }))).message).toMatch(re);
    }
  });
});

describe('builtin loader', () => {
  it('digits is 1797×64 with 10 classes; iris 150×4', async () => {
    const digits = await loadDataset({ use: 'builtin', name: 'digits' });
    expect(digits.train.inputs.x.shape[0] + digits.test.inputs.x.shape[0]).toBe(1797);
    expect(digits.train.inputs.x.shape[1]).toBe(64);
    expect(digits.numOutputs).toBe(10);
    expect(digits.test.inputs.x.shape[0]).toBe(359);
    const iris = await loadDataset({ use: 'builtin', name: 'iris', split: 0 });
    expect(iris.train.inputs.x.shape).toEqual([150, 4]);
    expect(iris.classNames).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(Array.from((iris.train.inputs.x.data as Float32Array).subarray(0, 4))).toEqual([5.1, 3.5, 1.4, 0.2].map(Math.fround));
    const wine = await loadDataset({ use: 'builtin', name: 'wine' });
    expect(wine.featureNames).toHaveLength(13);
    const bc = await loadDataset({ use: 'builtin', name: 'breast-cancer' });
    expect(bc.numOutputs).toBe(2);
    expect(bc.train.labels.length + bc.test.labels.length).toBe(569);
  });

  it('synthetic generators with options; unknown names list the known ones', async () => {
    const ds = await loadDataset({ use: 'builtin', name: 'synthetic-relevant', n: 100, features: 16, relevant: 5, seed: 4 });
    expect(ds.train.inputs.x.shape).toEqual([80, 16]);
    expect(ds.relevantFeatures).toHaveLength(5);
    const img = await loadDataset({ use: 'builtin', name: 'synthetic-shapes', n: 30, size: 8 });
    expect(img.train.inputs.x.shape).toEqual([24, 1, 8, 8]);
    const e = await userError(loadDataset({ use: 'builtin', name: 'mnist' }));
    expect(e.message).toMatch(/unknown built-in data set 'mnist'/);
    expect(e.fix).toMatch(/digits.*iris.*synthetic-text/);
  });

  it('registers every loader in the dataset slot', async () => {
    const c = await createContainer([coreModule]);
    expect(listPlugins(c).dataset).toEqual(['builtin', 'csv', 'images', 'jsonl', 'npy']);
    expect(resolvePlugin<DataLoader>(c, 'dataset', 'csv')).toBe(DATA_LOADERS.csv);
  });
});
