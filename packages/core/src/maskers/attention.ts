import type { FeatureSpace } from '../feature-space.js';
import type { Inputs } from '../inputs.js';
import type { Masker, MaskerFactory, MaskerOptions } from '../masker.js';
import { UserError } from '../errors.js';
import { int64Words, takeRows, type TensorData } from '../tensor.js';
import { takeAux } from './common.js';

export interface TokenMaskerOptions {
  /** Set attention_mask to 0 at removed positions (attention: true; pad: false). */
  dropAttention: boolean;
  /** Replace removed ids with this id (undefined: keep the id). */
  replaceId?: number;
  /** Positions always kept (e.g. 0 for [CLS]). */
  keep: number[];
  /** Keep every position with token_type_ids = 1 (segment B of a pair: the question / answer). */
  keepSegmentB: boolean;
  /** Ids never removed (special tokens such as [CLS], [SEP]). */
  specialIds: number[];
}

/** Whether int64 values are stored low word first (then an int64 that fits in int32 reads as (value, sign words)). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function int64(t: TensorData | undefined, what: string): BigInt64Array | undefined {
  if (!t) return undefined;
  if (t.data instanceof BigInt64Array) return t.data;
  const out = new BigInt64Array(t.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = t.data[i];
    if (!Number.isInteger(v)) throw new UserError(`${what} holds a non-integer value ${v}`, `give ${what} as int64`);
    out[i] = BigInt(v);
  }
  return out;
}

/**
 * Token removal for x = input_ids [B, L] (int64). A position is removed where the expanded mask is < 0.5 (ids cannot
 * blend) and it is not protected: `keep` positions, special ids, segment B when `keepSegmentB`. Removed positions
 * get attention_mask 0 (`dropAttention`) and/or their id replaced by `replaceId`. Padding (attention_mask 0 already)
 * stays as it is. attention_mask is created (all ones) when the inputs have none.
 */
export class TokenMasker implements Masker {
  constructor(readonly name: string, readonly options: TokenMaskerOptions) {}

  apply(inputs: Inputs, masks: Float32Array, rows: ArrayLike<number>, space: FeatureSpace): Inputs {
    const s = inputs.x.shape;
    if (s.length !== 2 || !(inputs.x.data instanceof BigInt64Array)) {
      throw new UserError(`masker '${this.name}' needs x = input_ids [B, L] (int64), found ${inputs.x.data instanceof BigInt64Array ? 'int64' : 'float32'} [${s.join(', ')}]`, 'use masker: zero, mean or blur for float inputs');
    }
    const L = s[1];
    const R = rows.length;
    const M = space.expand(masks, rows, inputs).data;
    if (M.length !== R * L) throw new UserError(`masker '${this.name}': the feature space expanded masks to ${M.length} values, expected ${R}×${L}`, 'use the tokens feature space');
    const ids = takeRows(inputs.x, rows).data as BigInt64Array;
    const amSrc = int64(inputs.attention_mask, 'attention_mask');
    const ttSrc = this.options.keepSegmentB ? int64(inputs.token_type_ids, 'token_type_ids') : undefined;
    if (this.options.keepSegmentB && !ttSrc) throw new UserError(`masker '${this.name}': keepSegmentB needs token_type_ids in the inputs`, 'encode text pairs with token_type_ids, or set keepSegmentB: false');
    const am = new BigInt64Array(R * L);
    const keepPos = new Uint8Array(L);
    for (const k of this.options.keep) {
      const kk = k < 0 ? L + k : k;
      if (kk >= 0 && kk < L) keepPos[kk] = 1;
    }
    // special tokens marked by the tokenizer ([CLS], [SEP], ...) are never removed
    const stm = inputs.special_tokens_mask?.data.length === inputs.x.data.length ? (inputs.special_tokens_mask.data as BigInt64Array) : undefined;
    const replace = this.options.replaceId === undefined ? undefined : BigInt(this.options.replaceId);
    const drop = this.options.dropAttention;
    const specialIds = this.options.specialIds;
    if (LITTLE_ENDIAN && specialIds.every((v) => v === (v | 0)) && (replace === undefined || replace <= 0x7fffffffn)) {
      // int64 words read as int32 pairs (lo, hi): no BigInt per element (each one would allocate)
      const id32 = int64Words(ids);
      const am32 = int64Words(am);
      const amSrc32 = amSrc && int64Words(amSrc);
      const stm32 = stm && int64Words(stm);
      const tt32 = ttSrc && int64Words(ttSrc);
      const special = new Set(specialIds);
      const rep = replace === undefined ? -1 : Number(replace);
      for (let r = 0; r < R; r++) {
        const src = 2 * rows[r] * L;
        for (let k = 0; k < L; k++) {
          const o = r * L + k;
          const s2 = src + 2 * k;
          const aLo = amSrc32 ? amSrc32[s2] : 1;
          const aHi = amSrc32 ? amSrc32[s2 + 1] : 0;
          am32[2 * o] = aLo;
          am32[2 * o + 1] = aHi;
          if (M[o] >= 0.5 || (aLo === 0 && aHi === 0) || keepPos[k]) continue;
          const idLo = id32[2 * o];
          if (special.size > 0 && id32[2 * o + 1] === idLo >> 31 && special.has(idLo)) continue;
          if ((stm32 && (stm32[s2] !== 0 || stm32[s2 + 1] !== 0)) || (tt32 && tt32[s2] === 1 && tt32[s2 + 1] === 0)) continue;
          if (drop) am32[2 * o] = am32[2 * o + 1] = 0;
          if (rep >= 0) {
            id32[2 * o] = rep;
            id32[2 * o + 1] = 0;
          }
        }
      }
    } else {
      const special = new Set(specialIds.map((v) => BigInt(v)));
      for (let r = 0; r < R; r++) {
        const src = rows[r] * L;
        for (let k = 0; k < L; k++) {
          const o = r * L + k;
          const a = amSrc ? amSrc[src + k] : 1n;
          am[o] = a;
          if (M[o] >= 0.5 || a === 0n || keepPos[k] || special.has(ids[o]) || (stm && stm[src + k] !== 0n) || (ttSrc && ttSrc[src + k] === 1n)) continue;
          if (drop) am[o] = 0n;
          if (replace !== undefined) ids[o] = replace;
        }
      }
    }
    // built by assignment, not an object spread (see withX in common.ts)
    const out = takeAux(inputs, rows, ['attention_mask']);
    out.x = { data: ids, shape: [R, L] };
    out.attention_mask = { data: am, shape: [R, L] };
    return out as Inputs;
  }
}

function ints(v: unknown, key: string): number[] {
  if (v === undefined || v === null) return [];
  const arr = typeof v === 'number' ? [v] : v;
  if (!Array.isArray(arr) || !arr.every((k) => Number.isInteger(k))) throw new UserError(`masker.${key}: expected a list of integers, found ${JSON.stringify(v)}`, `set masker.${key} to e.g. [0]`);
  return arr as number[];
}

function optId(v: unknown, key: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Number.isInteger(v) || (v as number) < 0) throw new UserError(`masker.${key}: expected a token id (integer ≥ 0), found ${JSON.stringify(v)}`, `set masker.${key} to the tokenizer's id`);
  return v as number;
}

function common(options: MaskerOptions) {
  const keepSegmentB = options.keepSegmentB ?? false;
  if (typeof keepSegmentB !== 'boolean') throw new UserError('masker.keepSegmentB: expected true or false', 'set keepSegmentB: true to keep the second text of a pair');
  return { keep: ints(options.keep, 'keep'), keepSegmentB, specialIds: ints(options.specialIds, 'specialIds') };
}

/**
 * `masker: {use: attention, maskId?, padId?, keep?: [positions], keepSegmentB?, specialIds?}`: removed tokens get
 * attention_mask 0; their id is also replaced by maskId (else padId) when one is given.
 */
export const attentionMaskerFactory: MaskerFactory = {
  name: 'attention',
  create(options: MaskerOptions): Masker {
    const replaceId = optId(options.maskId, 'maskId') ?? optId(options.padId, 'padId');
    return new TokenMasker('attention', { dropAttention: true, replaceId, ...common(options) });
  },
};

/**
 * `masker: {use: pad, padId?: 0, attention?: false, keep?, keepSegmentB?, specialIds?}`: removed tokens become padId
 * (attention kept, the reference's SOP text masking); `attention: true` also zeroes their attention_mask.
 */
export const padMaskerFactory: MaskerFactory = {
  name: 'pad',
  create(options: MaskerOptions): Masker {
    const att = options.attention ?? false;
    if (typeof att !== 'boolean') throw new UserError('masker.attention: expected true or false', 'set attention: true to also zero attention_mask');
    return new TokenMasker('pad', { dropAttention: att, replaceId: optId(options.padId, 'padId') ?? 0, ...common(options) });
  },
};
