import type { FeatureSpace, FeatureSpaceFactory } from '../feature-space.js';
import type { Inputs } from '../inputs.js';
import { UserError } from '../errors.js';
import type { FloatTensor } from '../tensor.js';
import { checkAttribution, checkMasks, checkRowShape, floatValues } from './common.js';

/**
 * Rectangular patches of an image x [B, C, H, W] (or [B, H, W], C = 1). Patch size [ph, pw] pixels; the grid is
 * [gh, gw] = [⌈H/ph⌉, ⌈W/pw⌉] (edge patches are partial when the size does not divide), d = gh·gw, feature
 * f = row·gw + col (row-major). expand: every pixel (all channels) takes its patch's mask value (nearest upsampling).
 * aggregate: sum over the patch's pixels and all channels (the adjoint of expand). featureValues: [B, d, C·ph·pw], the
 * patch's raw values in (c, y, x) order, zero-padded for partial edge patches.
 */
export class PatchesSpace implements FeatureSpace {
  readonly kind = 'patches' as const;
  readonly numFeatures: number;
  readonly grid: number[];
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  /** Feature index of every pixel [H*W]. */
  readonly pixelFeature: Int32Array;

  constructor(readonly rowShape: number[], readonly patch: [number, number]) {
    if (rowShape.length !== 2 && rowShape.length !== 3) {
      throw new UserError(`features (patches): x rows must be [C, H, W] or [H, W], found [${rowShape.join(', ')}]`, 'use patches for images; columns for tables');
    }
    this.channels = rowShape.length === 3 ? rowShape[0] : 1;
    this.height = rowShape[rowShape.length - 2];
    this.width = rowShape[rowShape.length - 1];
    const [ph, pw] = patch;
    if (!(Number.isInteger(ph) && Number.isInteger(pw) && ph > 0 && pw > 0)) throw new UserError(`features.size: patch size [${ph}, ${pw}] must be positive integers`, 'set features.size to e.g. [16, 16]');
    if (ph > this.height || pw > this.width) throw new UserError(`features.size: patch [${ph}, ${pw}] is larger than the image (${this.height}×${this.width})`, 'use a smaller patch size');
    const gh = Math.ceil(this.height / ph);
    const gw = Math.ceil(this.width / pw);
    this.grid = [gh, gw];
    this.numFeatures = gh * gw;
    this.pixelFeature = new Int32Array(this.height * this.width);
    for (let y = 0; y < this.height; y++) for (let x = 0; x < this.width; x++) this.pixelFeature[y * this.width + x] = Math.floor(y / ph) * gw + Math.floor(x / pw);
  }

  featureNames(): string[] {
    const [gh, gw] = this.grid;
    const out: string[] = [];
    for (let r = 0; r < gh; r++) for (let c = 0; c < gw; c++) out.push(`patch ${r},${c}`);
    return out;
  }

  expand(masks: Float32Array, rows: ArrayLike<number>, inputs: Inputs): FloatTensor {
    checkRowShape(inputs, this.rowShape, 'patches');
    const d = this.numFeatures;
    checkMasks(masks, rows, d, inputs.x.shape[0], 'patches');
    const R = rows.length;
    const hw = this.height * this.width;
    const C = this.channels;
    const out = new Float32Array(R * C * hw);
    const map = this.pixelFeature;
    // one gather per pixel (nearest upsampling through the pixel → feature map), then copy to the other channels
    for (let r = 0; r < R; r++) {
      const base = r * C * hw;
      const mo = r * d;
      for (let p = 0; p < hw; p++) out[base + p] = masks[mo + map[p]];
      for (let c = 1; c < C; c++) out.copyWithin(base + c * hw, base, base + hw);
    }
    return { data: out, shape: [R, ...this.rowShape] };
  }

  aggregate(attribution: FloatTensor, inputs: Inputs): FloatTensor {
    checkAttribution(attribution, inputs, 'patches');
    const B = attribution.shape[0];
    const d = this.numFeatures;
    const hw = this.height * this.width;
    const C = this.channels;
    const out = new Float32Array(B * d);
    const a = attribution.data;
    const map = this.pixelFeature;
    for (let b = 0; b < B; b++) {
      const o = b * d;
      for (let c = 0; c < C; c++) {
        const base = (b * C + c) * hw;
        for (let p = 0; p < hw; p++) out[o + map[p]] += a[base + p];
      }
    }
    return { data: out, shape: [B, d] };
  }

  featureValues(inputs: Inputs): FloatTensor {
    checkRowShape(inputs, this.rowShape, 'patches');
    const B = inputs.x.shape[0];
    const p = this.channels * this.patch[0] * this.patch[1];
    const d = this.numFeatures;
    const x = floatValues(inputs.x);
    const row = this.channels * this.height * this.width;
    const idx = this.valueIndex();
    const n = d * p;
    const out = new Float32Array(B * n);
    for (let b = 0; b < B; b++) {
      const o = b * n;
      const xo = b * row;
      for (let t = 0; t < n; t++) {
        const i = idx[t];
        if (i >= 0) out[o + t] = x[xo + i];
      }
    }
    return { data: out, shape: [B, d, p] };
  }

  /** See {@link FeatureSpace.featureValueIndex} (the valueIndex below; undefined if featureValues is overridden). */
  featureValueIndex(inputs: Inputs): Int32Array | undefined {
    if (this.featureValues !== PatchesSpace.prototype.featureValues || !(inputs.x.data instanceof Float32Array)) return undefined;
    checkRowShape(inputs, this.rowShape, 'patches');
    return this.valueIndex();
  }

  private valueIdx?: Int32Array;

  /** For each of the d·p feature values of a row, its offset in the row (c, y, x), or −1 for padding (partial edge patches). */
  private valueIndex(): Int32Array {
    if (this.valueIdx) return this.valueIdx;
    const [ph, pw] = this.patch;
    const [gh, gw] = this.grid;
    const [C, H, W] = [this.channels, this.height, this.width];
    const p = C * ph * pw;
    const idx = new Int32Array(this.numFeatures * p).fill(-1);
    for (let gr = 0; gr < gh; gr++) {
      for (let gc = 0; gc < gw; gc++) {
        const o = (gr * gw + gc) * p;
        for (let c = 0; c < C; c++) {
          for (let dy = 0; dy < ph; dy++) {
            const y = gr * ph + dy;
            if (y >= H) break;
            for (let k = 0; k < pw && gc * pw + k < W; k++) idx[o + (c * ph + dy) * pw + k] = (c * H + y) * W + gc * pw + k;
          }
        }
      }
    }
    this.valueIdx = idx;
    return idx;
  }
}

/** Parse `size`: a number or [ph, pw]. */
export function patchSize(v: unknown, H: number, W: number): [number, number] {
  if (v === undefined || v === null) return [Math.ceil(H / 14), Math.ceil(W / 14)];
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((k) => typeof k === 'number')) return [v[0], v[1]];
  throw new UserError(`features.size: expected [height, width] pixels per patch, found ${JSON.stringify(v)}`, 'set features.size to e.g. [16, 16]');
}

/**
 * `features: {use: patches, size?: [ph, pw]}`. Default size: [⌈H/14⌉, ⌈W/14⌉] (a ViT-like 14×14 grid; 16 px at 224).
 */
export const patchesFeatures: FeatureSpaceFactory = {
  name: 'patches',
  create(options: Record<string, unknown>, sample: Inputs): FeatureSpace {
    const rowShape = sample.x.shape.slice(1);
    if (rowShape.length !== 2 && rowShape.length !== 3) {
      throw new UserError(`features (patches): x rows must be [C, H, W] or [H, W], found [${rowShape.join(', ')}]`, 'use patches for images; columns for tables, tokens for text');
    }
    const H = rowShape[rowShape.length - 2];
    const W = rowShape[rowShape.length - 1];
    return new PatchesSpace(rowShape, patchSize(options.size, H, W));
  },
};
