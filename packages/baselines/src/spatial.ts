/** Small spatial helpers for the CAM-style and attack-style attributors (maps [h, w], images [C, H, W]). */

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

/** Min-max normalise in place to [0, 1] (constant arrays become 0). */
export function minMaxInPlace(a: Float32Array, start = 0, end = a.length): void {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = start; i < end; i++) {
    if (a[i] < lo) lo = a[i];
    if (a[i] > hi) hi = a[i];
  }
  const r = hi - lo;
  for (let i = start; i < end; i++) a[i] = r > 0 ? (a[i] - lo) / r : 0;
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
 * Spread per-example spatial maps [B, h, w] over an image input [B, C, H, W] (bilinear resize, value/C per channel),
 * so that the feature space's aggregate sums back the map's mass per feature.
 */
export function mapsToImage(maps: Float32Array, B: number, h: number, w: number, xShape: number[]): Float32Array {
  const [, C, H, W] = xShape;
  const out = new Float32Array(B * C * H * W);
  for (let b = 0; b < B; b++) {
    const up = resizeBilinear(maps.subarray(b * h * w, (b + 1) * h * w), h, w, H, W);
    for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) out[((b * C + c) * H * W) + i] = up[i] / C;
  }
  return out;
}
