/**
 * Plain tensors used at every package edge: a flat typed array plus a row-major shape. No autograd here (that lives in
 * `autograd/`); these are just data.
 */
export type DType = 'float32' | 'int64';

export interface TensorData {
  data: Float32Array | BigInt64Array;
  shape: number[];
}

export interface FloatTensor extends TensorData {
  data: Float32Array;
}

export interface IntTensor extends TensorData {
  data: BigInt64Array;
}

import { UserError } from './errors.js';

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

export function tensor(data: Float32Array, shape: number[]): FloatTensor;
export function tensor(data: BigInt64Array, shape: number[]): IntTensor;
export function tensor(data: Float32Array | BigInt64Array, shape: number[]): TensorData {
  if (sizeOf(shape) !== data.length) {
    throw new UserError(`tensor shape [${shape.join(', ')}] needs ${sizeOf(shape)} values but got ${data.length}`);
  }
  return { data, shape: [...shape] };
}

export function zeros(shape: number[]): FloatTensor {
  return { data: new Float32Array(sizeOf(shape)), shape: [...shape] };
}

export function isFloat(t: TensorData): t is FloatTensor {
  return t.data instanceof Float32Array;
}

export function dtypeOf(t: TensorData): DType {
  return t.data instanceof Float32Array ? 'float32' : 'int64';
}

/** Rows [start, end) along the first axis, as a view (no copy). */
export function sliceRows<T extends TensorData>(t: T, start: number, end: number): T {
  const row = sizeOf(t.shape.slice(1));
  const data = t.data.subarray(start * row, end * row) as T['data'];
  return { data, shape: [end - start, ...t.shape.slice(1)] } as T;
}

/** The int64 values of a as pairs of int32 words, in the same memory (no BigInt allocated per value when read). */
export function int64Words(a: BigInt64Array): Int32Array {
  return new Int32Array(a.buffer, a.byteOffset, a.length * 2);
}

/** Pick rows by index along the first axis (copy). */
export function takeRows<T extends TensorData>(t: T, rows: ArrayLike<number>): T {
  const row = sizeOf(t.shape.slice(1));
  const out = t.data instanceof Float32Array ? new Float32Array(rows.length * row) : new BigInt64Array(rows.length * row);
  if (row <= 64) {
    // short rows (token ids, tabular rows): copied as 32-bit words (bit for bit, NaN payloads included), without a
    // subarray object per row; int64 values as word pairs (reading them as BigInts would allocate one per element)
    const w = t.data instanceof Float32Array ? 1 : 2;
    const src = t.data instanceof Float32Array ? new Int32Array(t.data.buffer, t.data.byteOffset, t.data.length) : int64Words(t.data);
    const dst = out instanceof Float32Array ? new Int32Array(out.buffer) : int64Words(out);
    const n = row * w;
    for (let i = 0; i < rows.length; i++) {
      const s = rows[i] * n;
      const o = i * n;
      for (let k = 0; k < n; k++) dst[o + k] = src[s + k];
    }
  } else {
    for (let i = 0; i < rows.length; i++) {
      (out as Float32Array).set((t.data as Float32Array).subarray(rows[i] * row, (rows[i] + 1) * row), i * row);
    }
  }
  return { data: out, shape: [rows.length, ...t.shape.slice(1)] } as T;
}

/** Concatenate along the first axis. */
export function concatRows<T extends TensorData>(parts: T[]): T {
  if (parts.length === 0) throw new Error('concatRows of nothing');
  const rest = parts[0].shape.slice(1);
  const total = parts.reduce((a, p) => a + p.shape[0], 0);
  const row = sizeOf(rest);
  const out = parts[0].data instanceof Float32Array ? new Float32Array(total * row) : new BigInt64Array(total * row);
  let off = 0;
  for (const p of parts) {
    (out as Float32Array).set(p.data as Float32Array, off);
    off += p.data.length;
  }
  return { data: out, shape: [total, ...rest] } as T;
}

/** Throws a UserError naming `what` if any value is NaN or infinite. */
export function assertFinite(t: TensorData | Float32Array, what: string): void {
  const data = t instanceof Float32Array ? t : t.data;
  if (!(data instanceof Float32Array)) return;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      throw new UserError(
        `${what} contains ${Number.isNaN(data[i]) ? 'NaN' : 'an infinite value'} at flat index ${i}`,
        'clean or impute the data before running sop (e.g. drop rows with missing values)',
      );
    }
  }
}

/** Row-wise argmax of a [B, C] tensor. */
export function argmaxRows(t: FloatTensor): Int32Array {
  const [b, c] = t.shape;
  const out = new Int32Array(b);
  for (let i = 0; i < b; i++) {
    let best = 0;
    for (let j = 1; j < c; j++) if (t.data[i * c + j] > t.data[i * c + best]) best = j;
    out[i] = best;
  }
  return out;
}

/** Row-wise softmax of a [B, C] tensor (new array). */
export function softmaxRows(t: FloatTensor): FloatTensor {
  const [b, c] = t.shape;
  const out = new Float32Array(b * c);
  for (let i = 0; i < b; i++) {
    let mx = -Infinity;
    for (let j = 0; j < c; j++) mx = Math.max(mx, t.data[i * c + j]);
    let s = 0;
    for (let j = 0; j < c; j++) s += out[i * c + j] = Math.exp(t.data[i * c + j] - mx);
    for (let j = 0; j < c; j++) out[i * c + j] /= s;
  }
  return { data: out, shape: [b, c] };
}
