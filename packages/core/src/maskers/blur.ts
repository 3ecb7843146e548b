import type { FeatureSpace } from '../feature-space.js';
import type { Inputs } from '../inputs.js';
import type { Masker, MaskerFactory, MaskerOptions } from '../masker.js';
import { UserError } from '../errors.js';
import { blend, floatX } from './common.js';

/** Reflect an index into [0, n) (torch 'reflect': the edge is not repeated). */
function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  i = ((i % period) + period) % period;
  return i < n ? i : period - i;
}

/** Normalised 1-D Gaussian kernel of radius ⌈3σ⌉. */
export function gaussianKernel(sigma: number): Float32Array {
  const r = Math.max(1, Math.ceil(3 * sigma));
  const k = new Float32Array(2 * r + 1);
  let s = 0;
  for (let i = -r; i <= r; i++) s += k[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= s;
  return k;
}

/** Separable Gaussian blur of `planes` images of H×W (row-major, plane after plane), reflect padding. */
export function gaussianBlur(src: Float32Array, planes: number, H: number, W: number, sigma: number): Float32Array {
  const k = gaussianKernel(sigma);
  const K = k.length;
  const r = (K - 1) / 2;
  const tmp = new Float32Array(planes * H * W);
  const out = new Float32Array(planes * H * W);
  const colIdx = new Int32Array(W * K);
  for (let x = 0; x < W; x++) for (let t = -r; t <= r; t++) colIdx[x * K + t + r] = reflect(x + t, W);
  const rowIdx = new Int32Array(H * K);
  for (let y = 0; y < H; y++) for (let t = -r; t <= r; t++) rowIdx[y * K + t + r] = reflect(y + t, H);
  // interior columns [lo, hi) need no reflection
  const lo = Math.min(r, W);
  const hi = Math.max(lo, W - r);
  for (let p = 0; p < planes; p++) {
    const o = p * H * W;
    // horizontal pass
    for (let y = 0; y < H; y++) {
      const row = o + y * W;
      for (let x = 0; x < lo; x++) {
        let acc = 0;
        for (let t = 0; t < K; t++) acc += k[t] * src[row + colIdx[x * K + t]];
        tmp[row + x] = acc;
      }
      for (let x = lo; x < hi; x++) {
        let acc = 0;
        const b = row + x - r;
        for (let t = 0; t < K; t++) acc += k[t] * src[b + t];
        tmp[row + x] = acc;
      }
      for (let x = hi; x < W; x++) {
        let acc = 0;
        for (let t = 0; t < K; t++) acc += k[t] * src[row + colIdx[x * K + t]];
        tmp[row + x] = acc;
      }
    }
    // vertical pass, row by row (cache friendly)
    for (let y = 0; y < H; y++) {
      const dst = o + y * W;
      for (let t = 0; t < K; t++) {
        const w = k[t];
        const srow = o + rowIdx[y * K + t] * W;
        for (let x = 0; x < W; x++) out[dst + x] += w * tmp[srow + x];
      }
    }
  }
  return out;
}

/**
 * x̃ = b + (x − b) ⊙ M with b a Gaussian-blurred copy (per channel, reflect padding, radius ⌈3σ⌉) of the same image.
 * `sigma` in pixels; default max(1, max(H, W)/32) (7 px at 224). Each distinct example is blurred once per call.
 */
export class BlurMasker implements Masker {
  readonly name = 'blur';
  constructor(readonly sigma?: number) {}

  apply(inputs: Inputs, masks: Float32Array, rows: ArrayLike<number>, space: FeatureSpace): Inputs {
    const x = floatX(inputs, 'blur');
    const s = inputs.x.shape;
    if (s.length !== 3 && s.length !== 4) throw new UserError(`masker 'blur' needs images [B, C, H, W] or [B, H, W], found [${s.join(', ')}]`, 'use masker: zero or mean for tables');
    const H = s[s.length - 2];
    const W = s[s.length - 1];
    const C = s.length === 4 ? s[1] : 1;
    const sigma = this.sigma ?? Math.max(1, Math.max(H, W) / 32);
    const row = C * H * W;
    const cache = new Map<number, Float32Array>();
    return blend(inputs, masks, rows, space, 'blur', (r) => {
      const i = rows[r];
      let b = cache.get(i);
      if (!b) {
        b = gaussianBlur(x.subarray(i * row, (i + 1) * row), C, H, W, sigma);
        cache.set(i, b);
      }
      return b;
    });
  }
}

/** `masker: {use: blur, sigma?}`. */
export const blurMaskerFactory: MaskerFactory = {
  name: 'blur',
  create(options: MaskerOptions): Masker {
    const sigma = options.sigma as number | undefined;
    if (sigma !== undefined && !(typeof sigma === 'number' && sigma > 0)) throw new UserError(`masker.sigma: expected a positive number, found ${JSON.stringify(sigma)}`, 'set sigma to e.g. 5 (pixels)');
    return new BlurMasker(sigma);
  },
};
