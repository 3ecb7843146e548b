import type { DataLoader, DataLoaderOptions, Dataset, DatasetSplit, Modality } from '../dataset.js';
import { UserError } from '../errors.js';
import type { TensorData } from '../tensor.js';
import { encodeClassLabels } from './labels.js';
import { optString, readNonEmpty, resolvePath, splitFraction } from './options.js';
import { splitIndices, subset } from './split.js';

export type NpyDType = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'int8' | 'int16' | 'uint16' | 'bool';

/** A parsed .npy array. Integer dtypes other than int64 and floats are held as float64 values (exact for ≤ 2^53). */
export interface NpyArray {
  dtype: NpyDType;
  shape: number[];
  /** float64 values (all dtypes but int64). */
  values?: Float64Array;
  /** int64 values. */
  ints?: BigInt64Array;
}

const DESCR: Record<string, { dtype: NpyDType; bytes: number }> = {
  f4: { dtype: 'float32', bytes: 4 },
  f8: { dtype: 'float64', bytes: 8 },
  i4: { dtype: 'int32', bytes: 4 },
  i8: { dtype: 'int64', bytes: 8 },
  u1: { dtype: 'uint8', bytes: 1 },
  i1: { dtype: 'int8', bytes: 1 },
  i2: { dtype: 'int16', bytes: 2 },
  u2: { dtype: 'uint16', bytes: 2 },
  b1: { dtype: 'bool', bytes: 1 },
};

/**
 * Parse the NPY format (versions 1.0, 2.0, 3.0): magic `\x93NUMPY`, version, header length, a Python-dict header
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (N, ...), }`, then the raw C-order data. Little- and big-endian
 * descriptors are read through a DataView. Fortran order, object arrays and other dtypes are UserErrors.
 */
export function parseNpy(buf: Uint8Array, file = 'NPY file'): NpyArray {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (buf.length < 10 || !magic.every((b, i) => buf[i] === b)) {
    throw new UserError(`${file} is not a NumPy .npy file (bad magic bytes)`, 'save the array with numpy.save(path, array)');
  }
  const major = buf[6];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let headerLen: number;
  let offset: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    offset = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) throw new UserError(`${file}: truncated .npy header`, 'write the file again with numpy.save');
    headerLen = view.getUint32(8, true);
    offset = 12;
  } else {
    throw new UserError(`${file}: unsupported .npy format version ${major}.${buf[7]}`, 'save with numpy.save (format 1.0-3.0)');
  }
  if (offset + headerLen > buf.length) throw new UserError(`${file}: truncated .npy header`, 'write the file again with numpy.save');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(buf.subarray(offset, offset + headerLen));
  const descrM = /['"]descr['"]\s*:\s*['"]([^'"]+)['"]/.exec(header);
  const fortranM = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header);
  const shapeM = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descrM || !fortranM || !shapeM) throw new UserError(`${file}: cannot read the .npy header ${JSON.stringify(header.trim())}`, 'save the array with numpy.save');
  const descr = descrM[1];
  if (fortranM[1] === 'True') {
    throw new UserError(`${file}: array is stored in Fortran (column-major) order`, 'save numpy.ascontiguousarray(array) instead');
  }
  const shape = shapeM[1]
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => Number(s.replace(/L$/, '')));
  if (shape.some((s) => !Number.isInteger(s) || s < 0)) throw new UserError(`${file}: bad shape in .npy header (${shapeM[1]})`, 'save the array with numpy.save');
  const endian = descr[0];
  const kind = endian === '<' || endian === '>' || endian === '|' || endian === '=' ? descr.slice(1) : descr;
  const little = endian !== '>';
  const info = DESCR[kind];
  if (!info) {
    throw new UserError(`${file}: unsupported dtype '${descr}'`, 'convert it with array.astype(numpy.float32) (supported: float32, float64, int32, int64, uint8, int8, int16, uint16, bool)');
  }
  let count = 1;
  for (const s of shape) count *= s;
  const dataStart = offset + headerLen;
  const need = count * info.bytes;
  if (buf.length - dataStart < need) {
    throw new UserError(`${file}: holds ${buf.length - dataStart} data bytes but shape (${shape.join(', ')}) of ${descr} needs ${need}`, 'the file is truncated; write it again with numpy.save');
  }
  const dv = new DataView(buf.buffer, buf.byteOffset + dataStart, need);
  if (info.dtype === 'int64') {
    const ints = new BigInt64Array(count);
    for (let i = 0; i < count; i++) ints[i] = dv.getBigInt64(i * 8, little);
    return { dtype: 'int64', shape, ints };
  }
  const values = new Float64Array(count);
  switch (info.dtype) {
    case 'float32':
      for (let i = 0; i < count; i++) values[i] = dv.getFloat32(i * 4, little);
      break;
    case 'float64':
      for (let i = 0; i < count; i++) values[i] = dv.getFloat64(i * 8, little);
      break;
    case 'int32':
      for (let i = 0; i < count; i++) values[i] = dv.getInt32(i * 4, little);
      break;
    case 'int16':
      for (let i = 0; i < count; i++) values[i] = dv.getInt16(i * 2, little);
      break;
    case 'uint16':
      for (let i = 0; i < count; i++) values[i] = dv.getUint16(i * 2, little);
      break;
    case 'int8':
      for (let i = 0; i < count; i++) values[i] = dv.getInt8(i);
      break;
    default: // uint8, bool
      for (let i = 0; i < count; i++) values[i] = dv.getUint8(i);
  }
  return { dtype: info.dtype, shape, values };
}

/** Serialise a float32 or int64 array as .npy (format 1.0) — for tests and exports. */
export function encodeNpy(data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array, shape: number[]): Uint8Array {
  const descr = data instanceof Float32Array ? '<f4' : data instanceof Float64Array ? '<f8' : data instanceof Int32Array ? '<i4' : data instanceof BigInt64Array ? '<i8' : '|u1';
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

/** Read a .npy file (UserError on missing/empty/malformed). */
export function readNpy(path: string, what = 'NPY file'): NpyArray {
  return parseNpy(readNonEmpty(path, what), path);
}

/** x as a tensor: int64 stays int64 (token ids) unless `dtype: float32`; everything else becomes float32. */
function toTensor(a: NpyArray, file: string, dtype?: string): TensorData {
  if (a.shape.length === 0) throw new UserError(`${file}: is a scalar; expected an array with a first (row) axis`, 'save an array shaped [N, ...]');
  if (a.ints && dtype !== 'float32') return { data: a.ints, shape: a.shape };
  const f = new Float32Array(a.shape.reduce((p, s) => p * s, 1));
  if (a.ints) for (let i = 0; i < f.length; i++) f[i] = Number(a.ints[i]);
  else for (let i = 0; i < f.length; i++) f[i] = a.values![i];
  for (let i = 0; i < f.length; i++) {
    if (!Number.isFinite(f[i])) {
      const row = Math.floor(i / (f.length / a.shape[0]));
      throw new UserError(`${file}: row ${row} (flat index ${i}) is ${Number.isNaN(f[i]) ? 'NaN' : 'infinite (or too large for float32)'}`, 'clean or impute the data before saving it');
    }
  }
  if (dtype === 'int64') {
    const ints = new BigInt64Array(f.length);
    for (let i = 0; i < f.length; i++) {
      if (!Number.isInteger(f[i])) throw new UserError(`${file}: dtype int64 requested but value ${f[i]} at flat index ${i} is not an integer`, 'drop data.dtype or save integer ids');
      ints[i] = BigInt(f[i]);
    }
    return { data: ints, shape: a.shape };
  }
  return { data: f, shape: a.shape };
}

function labelValues(a: NpyArray): number[] {
  const n = (a.ints ?? a.values!).length;
  const out = new Array<number>(n);
  if (a.ints) for (let i = 0; i < n; i++) out[i] = Number(a.ints[i]);
  else for (let i = 0; i < n; i++) out[i] = a.values![i];
  return out;
}

function defaultModality(x: TensorData): Modality {
  if (x.data instanceof BigInt64Array && x.shape.length === 2) return 'text';
  if (x.shape.length === 4) return 'image';
  if (x.shape.length === 3) return 'map';
  return 'tabular';
}

interface Pair {
  masks?: { data: Float32Array; shape: number[] };
  x: TensorData;
  aux: Record<string, TensorData>;
  y: NpyArray;
  xPath: string;
  yPath: string;
}

function readPair(options: DataLoaderOptions, block: Record<string, unknown>, where: string, dtype?: string): Pair {
  const dir = optString(block, 'path', undefined, where);
  const xRel = optString(block, 'x', dir ? `${dir}/x.npy` : undefined, where);
  const yRel = optString(block, 'y', dir ? `${dir}/y.npy` : undefined, where);
  if (!xRel || !yRel) throw new UserError(`${where}: give path (a folder holding x.npy and y.npy) or x and y`, `set ${where}.path or ${where}.x and ${where}.y`);
  const xPath = resolvePath(options, xRel);
  const yPath = resolvePath(options, yRel);
  const x = toTensor(readNpy(xPath, 'x array (.npy)'), xPath, dtype);
  const y = readNpy(yPath, 'label array (.npy)');
  const ny = y.shape[0] ?? 1;
  if (y.shape.length === 0 || ny !== x.shape[0]) {
    throw new UserError(`${yPath}: holds ${y.shape.length === 0 ? 'a scalar' : `${ny} labels`} (shape [${y.shape.join(', ')}]) but ${xPath} holds ${x.shape[0]} rows (shape [${x.shape.join(', ')}])`, 'save one label per row of x (the first axes must match)');
  }
  if (y.shape.length > 2) throw new UserError(`${yPath}: labels must be [N] or [N, k], found shape [${y.shape.join(', ')}]`, 'reshape the labels');
  const aux: Record<string, TensorData> = {};
  const auxSpec = block.aux;
  if (auxSpec !== undefined && auxSpec !== null) {
    if (typeof auxSpec !== 'object' || Array.isArray(auxSpec)) throw new UserError(`${where}.aux: expected {name: file.npy, ...}`, `e.g. ${where}.aux: {segments: segments.npy}`);
    for (const [name, rel] of Object.entries(auxSpec as Record<string, unknown>)) {
      if (typeof rel !== 'string') throw new UserError(`${where}.aux.${name}: expected a file path`, `set ${where}.aux.${name} to a .npy file`);
      if (name === 'x') throw new UserError(`${where}.aux: 'x' is the primary input, not an auxiliary one`, `use ${where}.x`);
      const p = resolvePath(options, rel);
      const t = toTensor(readNpy(p, `${where}.aux.${name} (.npy)`), p);
      if (t.shape[0] !== x.shape[0]) {
        throw new UserError(`${p}: holds ${t.shape[0]} rows (shape [${t.shape.join(', ')}]) but ${xPath} holds ${x.shape[0]}`, 'save one auxiliary row per row of x');
      }
      aux[name] = t;
    }
  }
  let masks: Pair['masks'];
  const masksRel = optString(block, 'masks', undefined, where);
  if (masksRel) {
    const p = resolvePath(options, masksRel);
    const m = readNpy(p, `${where}.masks (.npy)`);
    if (m.shape[0] !== x.shape[0]) {
      throw new UserError(`${p}: holds ${m.shape[0]} masks (shape [${m.shape.join(', ')}]) but ${xPath} holds ${x.shape[0]} rows`, 'save one ground-truth mask per row of x');
    }
    masks = { data: Float32Array.from(m.values ?? Array.from(m.ints ?? [], Number)), shape: m.shape };
  }
  return { x, aux, y, xPath, yPath, masks };
}

/**
 * `data: {use: npy, path: DIR (x.npy + y.npy) | x: FILE, y: FILE, aux?: {name: FILE}, split?: 0.2, test?: {path | x, y, aux},
 * masks?: FILE (ground-truth input masks [N, ...], e.g. object masks [N, H, W]), classNames?, dtype?, modality?}`. `aux` adds auxiliary inputs row for row (e.g. `segments` [N, H, W] for the segments feature
 * space, `attention_mask`); int64 files stay int64.
 * x may have any shape [N, ...]; int64 x stays int64 (token ids) unless `dtype: float32`, other dtypes load as float32.
 * Classification labels are integer-valued (int or float dtypes) [N] or [N, 1]; regression labels are [N] or [N, k].
 */
export const npyLoader: DataLoader = {
  name: 'npy',
  async load(options: DataLoaderOptions): Promise<Dataset> {
    const task = options.task ?? 'classification';
    const dtype = optString(options, 'dtype');
    if (dtype && dtype !== 'float32' && dtype !== 'int64') throw new UserError(`data.dtype: expected float32 or int64, found ${dtype}`, 'set data.dtype to float32 or int64');
    const train = readPair(options, options, 'data', dtype);
    let test: Pair | undefined;
    if (options.test !== undefined) {
      if (!options.test || typeof options.test !== 'object') throw new UserError('data.test: expected {path} or {x, y}', 'set data.test: {path: test/}');
      test = readPair(options, options.test as Record<string, unknown>, 'data.test', dtype);
      if (test.x.shape.slice(1).join(',') !== train.x.shape.slice(1).join(',')) {
        throw new UserError(`${test.xPath}: rows are shaped [${test.x.shape.slice(1).join(', ')}] but training rows are [${train.x.shape.slice(1).join(', ')}]`, 'save train and test x with the same per-row shape');
      }
    }
    let numOutputs: number;
    let classNames: string[] | undefined;
    const enc = (p: Pair): Float32Array => {
      const vals = labelValues(p.y);
      if (task === 'regression') {
        for (let i = 0; i < vals.length; i++) {
          if (!Number.isFinite(vals[i])) throw new UserError(`${p.yPath}: label at flat index ${i} is not finite`, 'clean the targets');
        }
        return Float32Array.from(vals);
      }
      if (p.y.shape.length === 2 && p.y.shape[1] !== 1) {
        throw new UserError(`${p.yPath}: classification labels must be [N] class indices, found shape [${p.y.shape.join(', ')}]`, 'save class indices (argmax of one-hot labels), or set task: regression');
      }
      for (let i = 0; i < vals.length; i++) {
        if (!Number.isInteger(vals[i]) || vals[i] < 0) {
          throw new UserError(`${p.yPath}: label ${vals[i]} at row ${i} is not a class index (integer ≥ 0)`, 'save integer class indices, or set task: regression');
        }
      }
      return Float32Array.from(vals);
    };
    const yTrain = enc(train);
    const yTest = test ? enc(test) : undefined;
    if (task === 'regression') {
      numOutputs = train.y.shape.length === 2 ? train.y.shape[1] : 1;
    } else {
      const all = yTest ? [...yTrain, ...yTest] : [...yTrain];
      const e = encodeClassLabels(all, (i) => `row ${i}`);
      numOutputs = e.numOutputs;
      classNames = e.classNames;
      const given = options.classNames;
      if (given !== undefined) {
        if (!Array.isArray(given) || given.length !== numOutputs || !given.every((g) => typeof g === 'string')) {
          throw new UserError(`data.classNames: expected a list of ${numOutputs} names, found ${JSON.stringify(given)}`, 'give one name per class, in class-index order');
        }
        classNames = given as string[];
      }
    }
    let trainSplit: DatasetSplit;
    let testSplit: DatasetSplit;
    const testFraction = splitFraction(options);
    if (test) {
      trainSplit = { inputs: { ...train.aux, x: train.x }, labels: yTrain, ...(train.masks ? { inputMasks: train.masks } : {}) };
      testSplit = { inputs: { ...test.aux, x: test.x }, labels: yTest!, ...(test.masks ? { inputMasks: test.masks } : {}) };
    } else {
      const idx = splitIndices(train.x.shape[0], testFraction, options.seed ?? 0);
      const full = {
        inputs: { ...train.aux, x: train.x },
        labels: yTrain,
        labelWidth: task === 'regression' ? numOutputs : 1,
        ...(train.masks ? { inputMasks: train.masks } : {}),
      };
      trainSplit = subset(full, idx.train);
      testSplit = subset(full, idx.test);
    }
    const modality = (optString(options, 'modality') as Modality | undefined) ?? defaultModality(train.x);
    if (!['tabular', 'image', 'text', 'map'].includes(modality)) throw new UserError(`data.modality: unknown modality '${modality}'`, 'use tabular, image, text or map');
    const d = train.x.shape.length === 2 ? train.x.shape[1] : undefined;
    return {
      name: String(options.name ?? 'npy'),
      task,
      modality,
      numOutputs,
      classNames,
      featureNames: modality === 'tabular' && d !== undefined ? Array.from({ length: d }, (_, i) => `f${i}`) : undefined,
      train: trainSplit,
      test: testSplit,
      meta: { source: { x: train.xPath, y: train.yPath }, ...(test ? { testSource: { x: test.xPath, y: test.yPath } } : { split: testFraction }), seed: options.seed ?? 0 },
    };
  },
};
