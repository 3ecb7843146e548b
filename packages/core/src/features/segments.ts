import type { FeatureSpace, FeatureSpaceFactory } from '../feature-space.js';
import type { Inputs } from '../inputs.js';
import { UserError } from '../errors.js';
import type { FloatTensor, TensorData } from '../tensor.js';
import { checkAttribution, checkMasks, checkRowShape, floatValues } from './common.js';

/**
 * Per-example segments (superpixels, object parts): `inputs.segments` [B, H, W] holds an integer label in
 * [0, count) for every pixel of x [B, C, H, W] (or [B, H, W]); feature k of example b is the set of pixels labelled k
 * in b's own map, d = count, grid [count]. expand uses each row's own map; aggregate sums an attribution over each
 * segment (all channels) — its adjoint. featureValues [B, count, C + 3]: the segment's mean value per channel, its
 * area fraction and its centroid (y/H, x/W); zeros for empty segments. validFeatures: 0 for empty segments.
 */
export class SegmentsSpace implements FeatureSpace {
  readonly kind = 'segments' as const;
  readonly numFeatures: number;
  readonly grid: number[];
  readonly channels: number;
  readonly height: number;
  readonly width: number;

  constructor(readonly rowShape: number[], readonly count: number) {
    if (rowShape.length !== 2 && rowShape.length !== 3) throw new UserError(`features (segments): x rows must be [C, H, W] or [H, W], found [${rowShape.join(', ')}]`, 'use segments for images');
    if (!(Number.isInteger(count) && count > 0)) throw new UserError(`features.count: expected a positive integer, found ${count}`, 'set features.count to the number of segment labels');
    this.channels = rowShape.length === 3 ? rowShape[0] : 1;
    this.height = rowShape[rowShape.length - 2];
    this.width = rowShape[rowShape.length - 1];
    this.numFeatures = count;
    this.grid = [count];
  }

  featureNames(): string[] {
    return Array.from({ length: this.count }, (_, i) => `segment ${i}`);
  }

  /** The label maps as Int32Array [B*H*W], validated. */
  labels(inputs: Inputs): Int32Array {
    const seg: TensorData | undefined = inputs.segments;
    const B = inputs.x.shape[0];
    const hw = this.height * this.width;
    if (!seg) throw new UserError('features (segments): inputs.segments is missing', 'provide per-example label maps [B, H, W] as the segments input');
    if (seg.data.length !== B * hw) {
      throw new UserError(`features (segments): segments is shaped [${seg.shape.join(', ')}], expected [${B}, ${this.height}, ${this.width}]`, 'give one label map per example, the size of the image');
    }
    const out = new Int32Array(B * hw);
    for (let i = 0; i < out.length; i++) {
      const v = Number(seg.data[i]);
      if (!(Number.isInteger(v) && v >= 0 && v < this.count)) {
        throw new UserError(`features (segments): label ${v} at example ${Math.floor(i / hw)}, pixel ${i % hw} is outside 0..${this.count - 1}`, 'set features.count above the largest label, or relabel the segments');
      }
      out[i] = v;
    }
    return out;
  }

  expand(masks: Float32Array, rows: ArrayLike<number>, inputs: Inputs): FloatTensor {
    checkRowShape(inputs, this.rowShape, 'segments');
    const d = this.count;
    checkMasks(masks, rows, d, inputs.x.shape[0], 'segments');
    const labels = this.labels(inputs);
    const R = rows.length;
    const hw = this.height * this.width;
    const C = this.channels;
    const out = new Float32Array(R * C * hw);
    for (let r = 0; r < R; r++) {
      const base = r * C * hw;
      const lo = rows[r] * hw;
      const mo = r * d;
      for (let p = 0; p < hw; p++) out[base + p] = masks[mo + labels[lo + p]];
      for (let c = 1; c < C; c++) out.copyWithin(base + c * hw, base, base + hw);
    }
    return { data: out, shape: [R, ...this.rowShape] };
  }

  aggregate(attribution: FloatTensor, inputs: Inputs): FloatTensor {
    checkAttribution(attribution, inputs, 'segments');
    const labels = this.labels(inputs);
    const B = inputs.x.shape[0];
    const d = this.count;
    const hw = this.height * this.width;
    const C = this.channels;
    const out = new Float32Array(B * d);
    const a = attribution.data;
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < C; c++) {
        const base = (b * C + c) * hw;
        for (let p = 0; p < hw; p++) out[b * d + labels[b * hw + p]] += a[base + p];
      }
    }
    return { data: out, shape: [B, d] };
  }

  featureValues(inputs: Inputs): FloatTensor {
    checkRowShape(inputs, this.rowShape, 'segments');
    const labels = this.labels(inputs);
    const B = inputs.x.shape[0];
    const d = this.count;
    const C = this.channels;
    const H = this.height;
    const W = this.width;
    const hw = H * W;
    const p = C + 3;
    const x = floatValues(inputs.x);
    const out = new Float32Array(B * d * p);
    const area = new Float64Array(d);
    for (let b = 0; b < B; b++) {
      area.fill(0);
      const o = b * d * p;
      for (let q = 0; q < hw; q++) {
        const k = labels[b * hw + q];
        area[k]++;
        out[o + k * p + C + 1] += Math.floor(q / W);
        out[o + k * p + C + 2] += q % W;
        for (let c = 0; c < C; c++) out[o + k * p + c] += x[(b * C + c) * hw + q];
      }
      for (let k = 0; k < d; k++) {
        if (area[k] === 0) continue;
        for (let c = 0; c < C; c++) out[o + k * p + c] /= area[k];
        out[o + k * p + C] = area[k] / hw;
        out[o + k * p + C + 1] /= area[k] * H;
        out[o + k * p + C + 2] /= area[k] * W;
      }
    }
    return { data: out, shape: [B, d, p] };
  }

  validFeatures(inputs: Inputs): Float32Array {
    const labels = this.labels(inputs);
    const B = inputs.x.shape[0];
    const hw = this.height * this.width;
    const out = new Float32Array(B * this.count);
    for (let b = 0; b < B; b++) for (let q = 0; q < hw; q++) out[b * this.count + labels[b * hw + q]] = 1;
    return out;
  }
}

/** `features: {use: segments, count?}`; count defaults to 1 + the largest label in the sample's `segments`. */
export const segmentsFeatures: FeatureSpaceFactory = {
  name: 'segments',
  create(options: Record<string, unknown>, sample: Inputs): FeatureSpace {
    const rowShape = sample.x.shape.slice(1);
    let count = options.count as number | undefined;
    if (count === undefined) {
      if (!sample.segments) throw new UserError('features (segments): inputs.segments is missing', 'provide per-example label maps [B, H, W] as the segments input, and features.count');
      const v = floatValues(sample.segments);
      let max = -1;
      for (let i = 0; i < v.length; i++) if (v[i] > max) max = v[i];
      count = max + 1;
    }
    return new SegmentsSpace(rowShape, count);
  },
};
