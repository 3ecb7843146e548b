/**
 * What "removing" a token means for a text backbone. Token features are positions 0..L-1 of `x` (input_ids).
 */
import { UserError, type FeatureSpace, type Inputs, type IntTensor, type Masker, type TensorData } from '@sop/core';

/**
 * - `attention`: the token's attention_mask becomes 0 (ids kept).
 * - `pad`: the id becomes [PAD] (attention kept) — SOP's text masking (the [PAD] embedding in place of the token).
 * - `mask`: the id becomes [MASK] (attention kept).
 * - `pad+attention`: id [PAD] and attention_mask 0 — the reference's baselines and metrics.
 */
export type TokenRemovalKind = 'attention' | 'pad' | 'mask' | 'pad+attention';
export const TOKEN_REMOVAL_KINDS: readonly TokenRemovalKind[] = ['attention', 'pad', 'mask', 'pad+attention'];

export interface TokenRemovalOptions {
  removal: TokenRemovalKind;
  padTokenId: number;
  maskTokenId?: number;
  /** Ids never removed (the tokenizer's special tokens: [CLS], [SEP], ...). */
  specialIds: readonly number[];
  /** Keep segment B (token_type_ids = 1: the question/answer of a pair) always on. */
  keepSegmentB: boolean;
}

/**
 * Build R masked copies: row r is example `rows[r]` of `inputs` with token mask `masks[r]` ([R, L]; 1 = keep,
 * 0 = remove; values ≥ 0.5 count as kept since ids cannot blend). Special tokens and padding are never changed;
 * segment B is kept when `keepSegmentB`.
 */
export function removeTokens(inputs: Inputs, masks: Float32Array, rows: ArrayLike<number>, options: TokenRemovalOptions): Inputs {
  const [n, L] = inputs.x.shape;
  if (!(inputs.x.data instanceof BigInt64Array) || inputs.x.shape.length !== 2) {
    throw new UserError('token removal needs x = input_ids [N, L] (int64)', 'encode the texts with the hf backbone first');
  }
  const R = rows.length;
  if (masks.length !== R * L) {
    throw new UserError(`token masks have ${masks.length} values, expected ${R} rows × ${L} tokens`, 'give one mask row of L values per requested row');
  }
  if (options.removal === 'mask' && options.maskTokenId === undefined) {
    throw new UserError("backbone.removal: mask needs a [MASK] token but the tokenizer has none", "use removal: pad or attention");
  }
  const take = (t: TensorData | undefined): BigInt64Array | undefined => {
    if (!t) return undefined;
    if (!(t.data instanceof BigInt64Array)) throw new UserError('attention_mask / token_type_ids must be int64', 'encode the texts with the hf backbone');
    const out = new BigInt64Array(R * L);
    for (let r = 0; r < R; r++) {
      const i = rows[r];
      if (i < 0 || i >= n) throw new UserError(`row ${i} is out of range (batch has ${n})`, 'pass row indices of the given inputs');
      out.set(t.data.subarray(i * L, (i + 1) * L), r * L);
    }
    return out;
  };
  const ids = take(inputs.x)!;
  const am = take(inputs.attention_mask) ?? new BigInt64Array(R * L).fill(1n);
  const tt = take(inputs.token_type_ids);
  const special = new Set(options.specialIds.map((s) => BigInt(s)));
  const pad = BigInt(options.padTokenId);
  const maskId = BigInt(options.maskTokenId ?? options.padTokenId);
  for (let k = 0; k < R * L; k++) {
    if (masks[k] >= 0.5) continue;
    if (am[k] === 0n) continue; // padding stays padding
    if (special.has(ids[k])) continue;
    if (options.keepSegmentB && tt && tt[k] === 1n) continue;
    switch (options.removal) {
      case 'attention':
        am[k] = 0n;
        break;
      case 'pad':
        ids[k] = pad;
        break;
      case 'mask':
        ids[k] = maskId;
        break;
      case 'pad+attention':
        ids[k] = pad;
        am[k] = 0n;
        break;
    }
  }
  const out: Inputs = { x: { data: ids, shape: [R, L] } as IntTensor, attention_mask: { data: am, shape: [R, L] } as IntTensor };
  if (tt) out.token_type_ids = { data: tt, shape: [R, L] } as IntTensor;
  for (const [k, v] of Object.entries(inputs)) {
    if (k === 'x' || k === 'attention_mask' || k === 'token_type_ids') continue;
    const row = v.shape.slice(1).reduce((a, b) => a * b, 1);
    const data = v.data instanceof Float32Array ? new Float32Array(R * row) : new BigInt64Array(R * row);
    for (let r = 0; r < R; r++) (data as Float32Array).set((v.data as Float32Array).subarray(rows[r] * row, (rows[r] + 1) * row), r * row);
    out[k] = { data, shape: [R, ...v.shape.slice(1)] };
  }
  return out;
}

/** The backbone's token removal as a core Masker (usable wherever a Masker is expected). */
export function tokenMasker(options: TokenRemovalOptions): Masker {
  return {
    name: `hf-tokens-${options.removal}`,
    apply(inputs: Inputs, masks: Float32Array, rows: ArrayLike<number>, _space: FeatureSpace): Inputs {
      return removeTokens(inputs, masks, rows, options);
    },
  };
}
