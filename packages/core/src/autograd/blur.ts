/**
 * Fixed Gaussian blur of the last axis read as a 1-D [n] or 2-D [h, w] grid, matching torchvision's
 * `gaussian_blur` (kernel from linspace(−(ks−1)/2, (ks−1)/2), normalised; reflect padding of ks//2). The 2-D blur is
 * separable (outer product of two 1-D kernels), so it runs as two 1-D passes. Linear, so backward = adjoint blur.
 */
import { UserError } from '../errors.js';
import { giveGrad } from './grad.js';
import { result, type Tensor } from './tensor.js';

/** torchvision's normalised 1-D Gaussian kernel. */
export function gaussianKernel1d(kernelSize: number, sigma: number): Float64Array {
  const k = new Float64Array(kernelSize);
  const half = (kernelSize - 1) / 2;
  let s = 0;
  for (let i = 0; i < kernelSize; i++) {
    const x = (-half + i) / sigma;
    k[i] = Math.exp(-0.5 * x * x);
    s += k[i];
  }
  for (let i = 0; i < kernelSize; i++) k[i] /= s;
  return k;
}

/** Reflect (without repeating the edge) an index into [0, n). */
function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let j = i % period;
  if (j < 0) j += period;
  return j < n ? j : period - j;
}

/** Source indices [n·ks] of each output position's taps. */
function taps(n: number, ks: number): Int32Array {
  const pad = (ks - 1) >> 1;
  const src = new Int32Array(n * ks);
  for (let i = 0; i < n; i++) for (let q = 0; q < ks; q++) src[i * ks + q] = reflect(i + q - pad, n);
  return src;
}

/** One 1-D pass over data laid out [outer, n, inner] along the middle axis; `adjoint` scatters instead. */
function pass(inp: Float32Array, out: Float32Array, outer: number, n: number, inner: number, src: Int32Array, w: Float64Array, adjoint: boolean): void {
  const ks = w.length;
  for (let o = 0; o < outer; o++) {
    const base = o * n * inner;
    for (let i = 0; i < n; i++) {
      const dst = base + i * inner;
      for (let q = 0; q < ks; q++) {
        const s = base + src[i * ks + q] * inner;
        const wq = w[q];
        if (adjoint) for (let t = 0; t < inner; t++) out[s + t] += wq * inp[dst + t];
        else for (let t = 0; t < inner; t++) out[dst + t] += wq * inp[s + t];
      }
    }
  }
}

export function blur(x: Tensor, grid: number[], kernelSize: number, sigma: number): Tensor {
  if (!Number.isInteger(kernelSize) || kernelSize < 1 || kernelSize % 2 === 0) {
    throw new UserError(`blur kernel size ${kernelSize} must be a positive odd integer`, 'use 1 (no blur), 3, 5, ...');
  }
  if (kernelSize > 1 && !(sigma > 0)) throw new UserError(`blur sigma ${sigma} must be positive`, 'use e.g. sigma = 1');
  const last = x.shape[x.ndim - 1];
  const cells = grid.reduce((a, b) => a * b, 1);
  if ((grid.length !== 1 && grid.length !== 2) || cells !== last) {
    throw new UserError(`blur grid [${grid.join(', ')}] does not match the last dimension ${last}`, 'give [n] or [h, w] with h·w equal to the last dimension');
  }
  if (kernelSize === 1) return x;
  const w = gaussianKernel1d(kernelSize, sigma);
  const batch = last === 0 ? 0 : x.size / last;
  const apply = (inp: Float32Array, adjoint: boolean): Float32Array => {
    if (grid.length === 1) {
      const out = new Float32Array(inp.length);
      pass(inp, out, batch, last, 1, taps(last, kernelSize), w, adjoint);
      return out;
    }
    const [h, wd] = grid;
    const tmp = new Float32Array(inp.length);
    const out = new Float32Array(inp.length);
    if (!adjoint) {
      pass(inp, tmp, batch * h, wd, 1, taps(wd, kernelSize), w, false);
      pass(tmp, out, batch, h, wd, taps(h, kernelSize), w, false);
    } else {
      pass(inp, tmp, batch, h, wd, taps(h, kernelSize), w, true);
      pass(tmp, out, batch * h, wd, 1, taps(wd, kernelSize), w, true);
    }
    return out;
  };
  return result(apply(x.data, false), [...x.shape], [x], (out) => giveGrad(x, apply(out.grad!, true)));
}
