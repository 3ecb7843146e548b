/** Gradient accumulation helpers used by the ops' backward closures. */
import type { Tensor } from './tensor.js';

/**
 * Add a freshly allocated gradient buffer into `t.grad`, taking ownership of `buf` when `t` has no gradient yet
 * (no copy). Only pass buffers nothing else holds.
 */
export function giveGrad(t: Tensor, buf: Float32Array): void {
  if (!t.grad) {
    t.grad = buf;
    return;
  }
  const d = t.grad;
  for (let i = 0; i < d.length; i++) d[i] += buf[i];
}

/** Reduce a gradient of a broadcast result back to an operand through its broadcast map. */
export function reduceByMap(g: Float32Array, map: Int32Array, size: number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < g.length; i++) out[map[i]] += g[i];
  return out;
}
