import type { FeatureSpace, FeatureSpaceFactory } from '../feature-space.js';
import type { Inputs } from '../inputs.js';
import { UserError } from '../errors.js';
import { int64Words, type FloatTensor } from '../tensor.js';
import { checkMasks, floatValues } from './common.js';

export type TokenValues = 'zeros' | 'ids';

/**
 * One feature per token position of x = input_ids [B, L] (int64): d = L, grid [L]. Masks are per position, so
 * expand/aggregate are copies ([R, L]); aggregate also accepts [B, L, ...] (e.g. an attribution on embeddings) and
 * sums the trailing axes. validFeatures = attention_mask ≠ 0 and special_tokens_mask = 0 (padding and [CLS]/[SEP]-style
 * tokens are not features); all ones without them.
 *
 * featureValues [B, L, 1]: token ids carry no magnitude, so by default (`values: zeros`) they are zeros and the SOP
 * generator's projection embeddings see only the learned position embedding; use the backbone's token states
 * (model.embeddings: backbone) for content-aware groups. `values: ids` gives the raw ids as floats (only sensible
 * with tiny vocabularies, e.g. the synthetic word-level encoding).
 */
export class TokensSpace implements FeatureSpace {
  readonly kind = 'tokens' as const;
  readonly numFeatures: number;
  readonly grid: number[];

  constructor(readonly length: number, readonly values: TokenValues = 'zeros') {
    this.numFeatures = length;
    this.grid = [length];
  }

  private check(inputs: Inputs): void {
    const s = inputs.x.shape;
    if (s.length !== 2 || s[1] !== this.length) {
      throw new UserError(`features (tokens): x is shaped [${s.join(', ')}] but the feature space was built for [B, ${this.length}]`, 'pad every batch to the same sequence length (the tokenizer\'s max length)');
    }
  }

  featureNames(): string[] {
    return Array.from({ length: this.length }, (_, i) => `token ${i}`);
  }

  expand(masks: Float32Array, rows: ArrayLike<number>, inputs: Inputs): FloatTensor {
    this.check(inputs);
    checkMasks(masks, rows, this.length, inputs.x.shape[0], 'tokens');
    return { data: masks.slice(), shape: [rows.length, this.length] };
  }

  aggregate(attribution: FloatTensor, inputs: Inputs): FloatTensor {
    this.check(inputs);
    const s = attribution.shape;
    const B = inputs.x.shape[0];
    if (s.length < 2 || s[0] !== B || s[1] !== this.length) {
      throw new UserError(`features (tokens): attribution is shaped [${s.join(', ')}], expected [${B}, ${this.length}, ...]`, 'give one attribution value (or vector) per token');
    }
    const inner = s.slice(2).reduce((a, b) => a * b, 1);
    const out = new Float32Array(B * this.length);
    const a = attribution.data;
    for (let i = 0; i < out.length; i++) {
      let acc = 0;
      for (let k = 0; k < inner; k++) acc += a[i * inner + k];
      out[i] = acc;
    }
    return { data: out, shape: [B, this.length] };
  }

  featureValues(inputs: Inputs): FloatTensor {
    this.check(inputs);
    const B = inputs.x.shape[0];
    const data = this.values === 'ids' ? floatValues(inputs.x).slice() : new Float32Array(B * this.length);
    return { data, shape: [B, this.length, 1] };
  }

  validFeatures(inputs: Inputs): Float32Array {
    this.check(inputs);
    const B = inputs.x.shape[0];
    const out = new Float32Array(B * this.length).fill(1);
    const am = inputs.attention_mask;
    if (am) {
      if (am.data.length !== out.length) throw new UserError(`features (tokens): attention_mask has ${am.data.length} values, expected ${B}×${this.length}`, 'give attention_mask shaped like input_ids');
      const z = zeros(am.data);
      for (let i = 0; i < out.length; i++) if (z(i)) out[i] = 0;
    }
    const special = inputs.special_tokens_mask;
    if (special && special.data.length === out.length) {
      const z = zeros(special.data);
      for (let i = 0; i < out.length; i++) if (!z(i)) out[i] = 0;
    }
    return out;
  }
}

/** `features: {use: tokens, values?: zeros|ids}` on x = input_ids [B, L]. */
export const tokensFeatures: FeatureSpaceFactory = {
  name: 'tokens',
  create(options: Record<string, unknown>, sample: Inputs): FeatureSpace {
    const s = sample.x.shape;
    if (s.length !== 2) throw new UserError(`features (tokens): x must be input_ids [B, L], found [${s.join(', ')}]`, 'encode texts with a tokenizer backbone; use patches for images and columns for tables');
    const values = (options.values ?? 'zeros') as TokenValues;
    if (values !== 'zeros' && values !== 'ids') throw new UserError(`features.values: expected zeros or ids, found ${JSON.stringify(options.values)}`, 'set features.values to zeros or ids');
    return new TokensSpace(s[1], values);
  },
};

/** i ↦ whether value i of a is 0 (int64 values read as their two 32-bit words: no BigInt allocated per value). */
function zeros(a: Float32Array | BigInt64Array): (i: number) => boolean {
  if (a instanceof Float32Array) return (i) => a[i] === 0;
  const w = int64Words(a);
  return (i) => w[2 * i] === 0 && w[2 * i + 1] === 0;
}
