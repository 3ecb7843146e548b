/**
 * Shape helpers shared by the autograd ops: numpy broadcasting, axis normalisation, and flat index maps that send each
 * element of a broadcast result back to the element of an operand it reads (used forward to gather and backward to
 * reduce gradients to the operand's shape).
 */
import { UserError } from '../errors.js';
import { sizeOf } from '../tensor.js';

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** numpy broadcasting of two shapes. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)];
    const db = i < n - b.length ? 1 : b[i - (n - b.length)];
    if (da !== db && da !== 1 && db !== 1) {
      throw new UserError(
        `cannot broadcast shapes [${a.join(', ')}] and [${b.join(', ')}]`,
        'make the operands’ trailing dimensions equal or 1',
      );
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Row-major strides. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/**
 * For every flat index of `out` (a broadcast of `inp`), the flat index of `inp` it reads. `null` when the shapes are
 * equal (identity map).
 */
export function broadcastMap(out: readonly number[], inp: readonly number[]): Int32Array | null {
  if (sameShape(out, inp)) return null;
  const n = sizeOf(out);
  const map = new Int32Array(n);
  const nd = out.length;
  if (nd === 0 || n === 0) return map;
  const off = nd - inp.length;
  const inStrides = stridesOf(inp);
  const st = new Array<number>(nd);
  for (let d = 0; d < nd; d++) st[d] = d < off || inp[d - off] === 1 ? 0 : inStrides[d - off];
  const last = out[nd - 1];
  const ls = st[nd - 1];
  const idx = new Int32Array(nd);
  let base = 0;
  for (let o = 0; o < n; o += last) {
    if (ls === 0) for (let j = 0; j < last; j++) map[o + j] = base;
    else for (let j = 0; j < last; j++) map[o + j] = base + j * ls;
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]++;
      base += st[d];
      if (idx[d] < out[d]) break;
      base -= st[d] * out[d];
      idx[d] = 0;
    }
  }
  return map;
}

/** Normalise a possibly negative axis. */
export function normAxis(axis: number, ndim: number): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (!Number.isInteger(a) || a < 0 || a >= ndim) {
    throw new UserError(`axis ${axis} is out of range for a tensor with ${ndim} dimensions`, `use an axis in [-${ndim}, ${ndim - 1}]`);
  }
  return a;
}

/** outer × n × inner split of a shape around `axis`. */
export function splitAt(shape: readonly number[], axis: number): [number, number, number] {
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i];
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  return [outer, shape[axis], inner];
}
