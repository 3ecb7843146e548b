/**
 * Raw images → `pixel_values` with the model's own image processor (preprocessor_config.json: resize, rescale,
 * normalise), and object masks → patch feature masks.
 */
import { RawImage } from '@huggingface/transformers';
import { UserError, type FloatTensor, type TensorData } from '@sop/core';

/** The part of a transformers.js ImageProcessor used here. */
export interface HfImageProcessorLike {
  (images: RawImage[]): Promise<{ pixel_values: { data: unknown; dims: number[] } }>;
}

export type PixelRange = 255 | 1 | 'auto';

/**
 * Convert a batch of raw images ([N, C, H, W] or [N, H, W, C], C ∈ {1, 3, 4}, values 0..255, or 0..1 with
 * pixelRange 1) to RawImages (uint8 HWC).
 */
export function toRawImages(x: TensorData, pixelRange: PixelRange = 'auto'): RawImage[] {
  if (!(x.data instanceof Float32Array) || x.shape.length !== 4) {
    throw new UserError(`image inputs must be float32 [N, C, H, W] or [N, H, W, C], got [${x.shape.join(', ')}]`, 'load images as a 4-D float tensor');
  }
  const [n, a, b, c] = x.shape;
  const chw = a === 1 || a === 3 || a === 4;
  const [C, H, W] = chw ? [a, b, c] : [c, a, b];
  if (!(C === 1 || C === 3 || C === 4)) {
    throw new UserError(`image inputs need 1, 3 or 4 channels, got shape [${x.shape.join(', ')}]`, 'give images as [N, C, H, W] or [N, H, W, C]');
  }
  const data = x.data;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < data.length; i++) {
    if (data[i] < lo) lo = data[i];
    if (data[i] > hi) hi = data[i];
  }
  if (lo < 0) {
    throw new UserError(
      `image inputs contain negative values (min ${lo.toFixed(3)}): they look already normalised`,
      'give raw pixels (0..255 or 0..1) so the model\'s preprocessor applies, or set backbone.preprocess: false to feed them as pixel_values',
    );
  }
  const scale = pixelRange === 1 || (pixelRange === 'auto' && hi <= 1) ? 255 : 1;
  const out: RawImage[] = [];
  const plane = H * W;
  for (let i = 0; i < n; i++) {
    const px = new Uint8ClampedArray(plane * C);
    const base = i * plane * C;
    for (let p = 0; p < plane; p++) {
      for (let ch = 0; ch < C; ch++) {
        const v = chw ? data[base + ch * plane + p] : data[base + p * C + ch];
        px[p * C + ch] = Math.round(v * scale);
      }
    }
    out.push(new RawImage(px, W, H, C as 1 | 3 | 4));
  }
  return out;
}

export async function preprocessImages(processor: HfImageProcessorLike, x: TensorData, pixelRange: PixelRange = 'auto', chunk = 64): Promise<FloatTensor> {
  const images = toRawImages(x, pixelRange);
  const parts: Float32Array[] = [];
  let dims: number[] = [];
  for (let s = 0; s < images.length; s += chunk) {
    const r = await processor(images.slice(s, s + chunk));
    const d = r.pixel_values.data;
    parts.push(d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>));
    dims = r.pixel_values.dims.slice(1);
  }
  const total = parts.reduce((a, p) => a + p.length, 0);
  const data = new Float32Array(total);
  let o = 0;
  for (const p of parts) {
    data.set(p, o);
    o += p.length;
  }
  return { data, shape: [images.length, ...dims] };
}

/**
 * Patch feature masks [N, gh*gw] from input-level masks [N, H, W] (nearest-neighbour resized to the model's
 * [h, w] when sizes differ): a patch is relevant when at least `threshold` of its pixels are.
 */
export function patchMasks(masks: { data: Float32Array; shape: number[] }, size: [number, number], patch: number, threshold = 0.5): Float32Array {
  const [n, H, W] = masks.shape;
  const [h, w] = size;
  const gh = Math.floor(h / patch);
  const gw = Math.floor(w / patch);
  const out = new Float32Array(n * gh * gw);
  for (let i = 0; i < n; i++) {
    for (let pr = 0; pr < gh; pr++) {
      for (let pc = 0; pc < gw; pc++) {
        let on = 0;
        for (let y = pr * patch; y < (pr + 1) * patch; y++) {
          const sy = Math.min(H - 1, Math.floor(((y + 0.5) * H) / h));
          for (let xx = pc * patch; xx < (pc + 1) * patch; xx++) {
            const sx = Math.min(W - 1, Math.floor(((xx + 0.5) * W) / w));
            if (masks.data[i * H * W + sy * W + sx] > 0.5) on++;
          }
        }
        out[i * gh * gw + pr * gw + pc] = on / (patch * patch) >= threshold ? 1 : 0;
      }
    }
  }
  return out;
}
