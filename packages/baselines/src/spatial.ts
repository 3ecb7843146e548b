/** Small spatial helpers for the CAM-style and attack-style attributors (maps [h, w], images [C, H, W]). */
import { baselineKernels, blurKernel } from './kernels/index.js';

/** Bilinear resize of one [h, w] map to [H, W] (align_corners = false, like torch's interpolate). */
export function resizeBilinear(src: ArrayLike<number>, h: number, w: number, H: number, W: number): Float32Array {
  const out = new Float32Array(H * W);
  if (h === H && w === W) {
    for (let i = 0; i < out.length; i++) out[i] = src[i];
    return out;
  }
  const sy = h / H;
  const sx = w / W;
  for (let y = 0; y < H; y++) {
    const fy = Math.max(0, (y + 0.5) * sy - 0.5);
    const y0 = Math.min(h - 1, Math.floor(fy));
    const y1 = Math.min(h - 1, y0 + 1);
    const ty = fy - y0;
    for (let x = 0; x < W; x++) {
      const fx = Math.max(0, (x + 0.5) * sx - 0.5);
      const x0 = Math.min(w - 1, Math.floor(fx));
      const x1 = Math.min(w - 1, x0 + 1);
      const tx = fx - x0;
      const a = src[y0 * w + x0] + (src[y0 * w + x1] - src[y0 * w + x0]) * tx;
      const b = src[y1 * w + x0] + (src[y1 * w + x1] - src[y1 * w + x0]) * tx;
      out[y * W + x] = a + (b - a) * ty;
    }
  }
  return out;
}

/** Depthwise Gaussian blur (size k, σ) of [N, C, H, W] data with zero padding (the TI kernel). */
export function gaussianBlur2d(data: Float32Array, shape: number[], k: number, sigma: number): Float32Array {
  const [N, C, H, W] = shape;
  const r = Math.floor(k / 2);
  const ker = new Float64Array(2 * r + 1);
  let s = 0;
  for (let i = -r; i <= r; i++) s += ker[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < ker.length; i++) ker[i] /= s;
  const tmp = new Float32Array(data.length);
  const out = new Float32Array(data.length);
  for (let p = 0; p < N * C; p++) {
    const o = p * H * W;
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        let acc = 0;
        for (let i = -r; i <= r; i++) {
          const xx = x + i;
          if (xx >= 0 && xx < W) acc += ker[i + r] * data[o + y * W + xx];
        }
        tmp[o + y * W + x] = acc;
      }
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        let acc = 0;
        for (let i = -r; i <= r; i++) {
          const yy = y + i;
          if (yy >= 0 && yy < H) acc += ker[i + r] * tmp[o + yy * W + x];
        }
        out[o + y * W + x] = acc;
      }
  }
  return out;
}

/**
 * {@link gaussianBlur2d} for repeated calls on data of one shape: the kernel and the two buffers are built once, and
 * the zero padding is handled by clipping each tap range instead of testing every tap. Same sums in the same order.
 * `apply` returns its own buffer (overwritten by the next call). It runs in WebAssembly ({@link blurKernel}, the
 * same float64 sums) when the kernels are available; the JavaScript below is the reference and fallback.
 */
export class GaussianBlur {
  private readonly shape: number[];
  readonly r: number;
  /** The taps [2r + 1] (float64). */
  readonly ker: Float64Array;
  private readonly tmp: Float32Array;
  private readonly out: Float32Array;

  constructor(shape: number[], k: number, sigma: number) {
    this.shape = shape;
    const r = Math.floor(k / 2);
    this.r = r;
    const ker = new Float64Array(2 * r + 1);
    let s = 0;
    for (let i = -r; i <= r; i++) s += ker[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
    for (let i = 0; i < ker.length; i++) ker[i] /= s;
    this.ker = ker;
    const [N, C, H, W] = shape;
    this.tmp = new Float32Array(N * C * H * W);
    this.out = new Float32Array(N * C * H * W);
  }

  apply(data: Float32Array): Float32Array {
    const [N, C, H, W] = this.shape;
    const r = this.r;
    const ker = this.ker;
    const tmp = this.tmp;
    const out = this.out;
    const wasm = baselineKernels();
    if (wasm) return blurKernel(wasm, data, N * C, H, W, ker, r, out);
    for (let p = 0; p < N * C; p++) {
      const o = p * H * W;
      for (let y = 0; y < H; y++) {
        const row = o + y * W;
        for (let x = 0; x < W; x++) {
          let acc = 0;
          const i0 = x - r < 0 ? -x : -r;
          const i1 = x + r >= W ? W - 1 - x : r;
          for (let i = i0; i <= i1; i++) acc += ker[i + r] * data[row + x + i];
          tmp[row + x] = acc;
        }
      }
      for (let y = 0; y < H; y++) {
        const i0 = y - r < 0 ? -y : -r;
        const i1 = y + r >= H ? H - 1 - y : r;
        for (let x = 0; x < W; x++) {
          let acc = 0;
          for (let i = i0; i <= i1; i++) acc += ker[i + r] * tmp[o + (y + i) * W + x];
          out[o + y * W + x] = acc;
        }
      }
    }
    return out;
  }
}

/**
 * Spread per-example spatial maps [B, h, w] over an image input [B, C, H, W] (bilinear resize, value/C per channel),
 * so that the feature space's aggregate sums back the map's mass per feature.
 */
export function mapsToImage(maps: Float32Array, B: number, h: number, w: number, xShape: number[]): Float32Array {
  const [, C, H, W] = xShape;
  const out = new Float32Array(B * C * H * W);
  addMapsToImage(maps, B, h, w, xShape, out);
  return out;
}

/** Bilinear source indices and weights along one axis, n → N (align_corners = false, as {@link resizeBilinear}). */
export interface AxisTable {
  lo: Int32Array;
  hi: Int32Array;
  t: Float64Array;
}

export function axisTable(n: number, N: number): AxisTable {
  const lo = new Int32Array(N);
  const hi = new Int32Array(N);
  const t = new Float64Array(N);
  const s = n / N;
  for (let u = 0; u < N; u++) {
    const f = Math.max(0, (u + 0.5) * s - 0.5);
    const a = Math.min(n - 1, Math.floor(f));
    lo[u] = a;
    hi[u] = Math.min(n - 1, a + 1);
    t[u] = f - a;
  }
  return { lo, hi, t };
}

/**
 * {@link mapsToImage} added into `out` [B, C, H, W] (maps [B, h·w], any array type): the bilinear resize
 * ({@link resizeBilinear}'s formula, interpolation tables built once per call) divided by C, in one pass, no
 * per-example buffers.
 */
export function addMapsToImage(maps: ArrayLike<number>, B: number, h: number, w: number, xShape: number[], out: Float32Array): void {
  const [, C, H, W] = xShape;
  const HW = H * W;
  const hw = h * w;
  const invC = 1 / C;
  if (h === H && w === W) {
    for (let b = 0; b < B; b++) {
      const mo = b * hw;
      for (let c = 0; c < C; c++) {
        const o = (b * C + c) * HW;
        for (let i = 0; i < HW; i++) out[o + i] += maps[mo + i] * invC;
      }
    }
    return;
  }
  const ty = axisTable(h, H);
  const tx = axisTable(w, W);
  for (let b = 0; b < B; b++) {
    const mo = b * hw;
    for (let y = 0; y < H; y++) {
      const r0 = mo + ty.lo[y] * w;
      const r1 = mo + ty.hi[y] * w;
      const wy = ty.t[y];
      for (let x = 0; x < W; x++) {
        const x0 = tx.lo[x];
        const x1 = tx.hi[x];
        const wx = tx.t[x];
        const a = maps[r0 + x0] + (maps[r0 + x1] - maps[r0 + x0]) * wx;
        const e = maps[r1 + x0] + (maps[r1 + x1] - maps[r1 + x0]) * wx;
        const v = (a + (e - a) * wy) * invC;
        const i = y * W + x;
        for (let c = 0; c < C; c++) out[(b * C + c) * HW + i] += v;
      }
    }
  }
}
