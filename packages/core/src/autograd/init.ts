/**
 * Parameter initialisers returning raw Float32Array data (wrap with `parameter(data, shape)`). The arrays also carry
 * `.data` (themselves) and `.shape`, so they can be used as a {@link FloatTensor} too.
 */
import type { Rng } from '../rng.js';
import { sizeOf, type FloatTensor } from '../tensor.js';

/** A Float32Array that is also a FloatTensor view of itself. */
export type InitArray = Float32Array & FloatTensor;

function asInit(a: Float32Array, shape: number[]): InitArray {
  return Object.assign(a, { data: a, shape: [...shape] });
}

/** torch's fan_in / fan_out: dims 1 and 0 times the receptive field (dims 2…). */
function fans(shape: number[]): [number, number] {
  if (shape.length === 0) return [1, 1];
  if (shape.length === 1) return [shape[0], shape[0]];
  let rf = 1;
  for (let i = 2; i < shape.length; i++) rf *= shape[i];
  return [shape[1] * rf, shape[0] * rf];
}

/** Xavier/Glorot uniform: U(−a, a) with a = √(6 / (fan_in + fan_out)) (torch's `xavier_uniform_`, gain 1). */
export function xavierUniform(shape: number[], rng: Rng): InitArray {
  const [fi, fo] = fans(shape);
  const a = Math.sqrt(6 / (fi + fo));
  const out = new Float32Array(sizeOf(shape));
  for (let i = 0; i < out.length; i++) out[i] = (2 * rng.next() - 1) * a;
  return asInit(out, shape);
}

/** N(0, std²). */
export function normalInit(shape: number[], std: number, rng: Rng): InitArray {
  const out = new Float32Array(sizeOf(shape));
  for (let i = 0; i < out.length; i++) out[i] = rng.normal() * std;
  return asInit(out, shape);
}

/** n×n identity, row-major. */
export function eye(n: number): InitArray {
  const out = new Float32Array(n * n);
  for (let i = 0; i < n; i++) out[i * n + i] = 1;
  return asInit(out, [n, n]);
}
