import { describe, expect, it } from 'vitest';
import { MASKERS } from '../src/maskers/registry.js';
import { FEATURE_SPACES } from '../src/features/registry.js';
import { gaussianBlur, gaussianKernel } from '../src/maskers/blur.js';
import type { Inputs } from '../src/inputs.js';
import { UserError } from '../src/errors.js';

const f32 = (a: number[]) => Float32Array.from(a);

describe('zero masker', () => {
  it('multiplies by the expanded mask, blends fractions, copies aux rows', () => {
    const inputs: Inputs = { x: { data: f32([1, 2, 3, 4, 5, 6]), shape: [2, 3] }, extra: { data: f32([10, 20]), shape: [2, 1] } };
    const space = FEATURE_SPACES.columns.create({}, inputs);
    const m = MASKERS.zero.create({ use: 'zero' });
    const masks = f32([1, 0, 0.5, 0, 1, 1, 1, 1, 1]);
    const out = m.apply(inputs, masks, [1, 0, 0], space);
    expect(out.x.shape).toEqual([3, 3]);
    expect(Array.from(out.x.data as Float32Array)).toEqual([4, 0, 3, 0, 2, 3, 1, 2, 3]);
    expect(Array.from(out.extra.data as Float32Array)).toEqual([20, 10, 10]);
    expect(Array.from(masks)).toEqual([1, 0, 0.5, 0, 1, 1, 1, 1, 1]); // caller's masks untouched
    expect(Array.from(inputs.x.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('patches: zeroes whole patches on every channel', () => {
    const x = Float32Array.from({ length: 2 * 4 * 6 }, (_, i) => i + 1);
    const inputs: Inputs = { x: { data: x, shape: [1, 2, 4, 6] } };
    const space = FEATURE_SPACES.patches.create({ size: [3, 4] }, inputs);
    const out = MASKERS.zero.create({ use: 'zero' }).apply(inputs, f32([0, 1, 1, 0]), [0], space);
    const o = out.x.data as Float32Array;
    for (let c = 0; c < 2; c++) {
      for (let y = 0; y < 4; y++) {
        for (let xx = 0; xx < 6; xx++) {
          const k = (c * 4 + y) * 6 + xx;
          const f = Math.floor(y / 3) * 2 + Math.floor(xx / 4);
          expect(o[k]).toBe([0, 1, 1, 0][f] * x[k]);
        }
      }
    }
    expect(() => MASKERS.zero.create({ use: 'zero' }).apply({ x: { data: new BigInt64Array(2), shape: [1, 2] } }, f32([1, 1]), [0], FEATURE_SPACES.tokens.create({}, { x: { data: new BigInt64Array(2), shape: [1, 2] } }))).toThrow(/int64/);
  });
});

describe('mean masker', () => {
  it('blends toward the per-element training mean; falls back to zero', () => {
    const reference: Inputs = { x: { data: f32([0, 10, 2, 20, 4, 30]), shape: [3, 2] } };
    const inputs: Inputs = { x: { data: f32([5, 5]), shape: [1, 2] } };
    const space = FEATURE_SPACES.columns.create({}, inputs);
    const m = MASKERS.mean.create({ use: 'mean', reference });
    // mean = [2, 20]; mask [0, 0.25] → [2, 20 + (5 - 20)·0.25]
    expect(Array.from(m.apply(inputs, f32([0, 0.25, 1, 1]), [0, 0], space).x.data as Float32Array)).toEqual([2, 16.25, 5, 5]);
    const noRef = MASKERS.mean.create({ use: 'mean' });
    expect(Array.from(noRef.apply(inputs, f32([0, 1]), [0], space).x.data as Float32Array)).toEqual([0, 5]);
    const wrong: Inputs = { x: { data: f32([1, 2, 3]), shape: [1, 3] } };
    expect(() => m.apply(wrong, f32([1, 1, 1]), [0], FEATURE_SPACES.columns.create({}, wrong))).toThrow(UserError);
  });
});

describe('blur masker', () => {
  it('gaussian kernel and blur match a direct 2-D convolution with reflect padding', () => {
    const k = gaussianKernel(1);
    expect(k.length).toBe(7);
    expect(k.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(k[3] / k[4]).toBeCloseTo(Math.exp(0.5), 5);
    const H = 5;
    const W = 6;
    const src = Float32Array.from({ length: H * W }, (_, i) => Math.sin(i) * 3);
    const out = gaussianBlur(src, 1, H, W, 1);
    const refl = (i: number, n: number) => (i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i);
    for (const [y, x] of [[0, 0], [2, 3], [4, 5], [1, 5]]) {
      let acc = 0;
      for (let dy = -3; dy <= 3; dy++) {
        for (let dx = -3; dx <= 3; dx++) {
          // reflect twice handles the radius-3 kernel on a 5-pixel axis
          const yy = refl(refl(y + dy, H), H);
          const xx = refl(refl(x + dx, W), W);
          acc += k[dy + 3] * k[dx + 3] * src[yy * W + xx];
        }
      }
      expect(out[y * W + x]).toBeCloseTo(acc, 5);
    }
    const flat = gaussianBlur(new Float32Array(30).fill(0.7), 1, 5, 6, 2);
    for (const v of flat) expect(v).toBeCloseTo(0.7, 6);
  });

  it('keeps kept patches and replaces removed ones with the blurred image', () => {
    const x = Float32Array.from({ length: 2 * 4 * 4 }, (_, i) => (i * 7) % 5);
    const inputs: Inputs = { x: { data: x, shape: [1, 2, 4, 4] } };
    const space = FEATURE_SPACES.patches.create({ size: [2, 2] }, inputs);
    const m = MASKERS.blur.create({ use: 'blur', sigma: 1 });
    const out = m.apply(inputs, f32([1, 0, 0, 1, 0, 0, 0, 0]), [0, 0], space).x.data as Float32Array;
    const blurred = gaussianBlur(x, 2, 4, 4, 1);
    for (let c = 0; c < 2; c++) {
      for (let p = 0; p < 16; p++) {
        const y = Math.floor(p / 4);
        const xx = p % 4;
        const f = Math.floor(y / 2) * 2 + Math.floor(xx / 2);
        const k = c * 16 + p;
        expect(out[k]).toBeCloseTo(f === 0 || f === 3 ? x[k] : blurred[k], 6);
        expect(out[32 + k]).toBeCloseTo(blurred[k], 6);
      }
    }
    expect(() => MASKERS.blur.create({ use: 'blur', sigma: -1 })).toThrow(UserError);
  });
});

describe('attention and pad maskers', () => {
  const inputs: Inputs = {
    x: { data: BigInt64Array.from([101n, 7n, 8n, 102n, 5n, 6n, 102n, 0n]), shape: [1, 8] },
    attention_mask: { data: BigInt64Array.from([1n, 1n, 1n, 1n, 1n, 1n, 1n, 0n]), shape: [1, 8] },
    token_type_ids: { data: BigInt64Array.from([0n, 0n, 0n, 0n, 1n, 1n, 1n, 0n]), shape: [1, 8] },
  };
  const space = FEATURE_SPACES.tokens.create({}, inputs);
  const none = new Float32Array(8);

  it('attention: removed positions get attention 0; padding and protected positions stay', () => {
    const m = MASKERS.attention.create({ use: 'attention', keep: [0] });
    const out = m.apply(inputs, f32([0, 1, 0, 0, 0, 0.6, 0, 0]), [0], space);
    expect(Array.from(out.x.data as BigInt64Array)).toEqual([101n, 7n, 8n, 102n, 5n, 6n, 102n, 0n]);
    expect(Array.from(out.attention_mask.data as BigInt64Array)).toEqual([1n, 1n, 0n, 0n, 0n, 1n, 0n, 0n]);
    expect(Array.from(out.token_type_ids.data as BigInt64Array)).toEqual([0n, 0n, 0n, 0n, 1n, 1n, 1n, 0n]);
    // maskId replacement + special ids + segment B kept
    const m2 = MASKERS.attention.create({ use: 'attention', maskId: 103, specialIds: [101, 102], keepSegmentB: true });
    const out2 = m2.apply(inputs, none, [0], space);
    expect(Array.from(out2.x.data as BigInt64Array)).toEqual([101n, 103n, 103n, 102n, 5n, 6n, 102n, 0n]);
    expect(Array.from(out2.attention_mask.data as BigInt64Array)).toEqual([1n, 0n, 0n, 1n, 1n, 1n, 1n, 0n]);
  });

  it('pad: ids become padId, attention kept (unless attention: true); batch of rows', () => {
    const m = MASKERS.pad.create({ use: 'pad', specialIds: [101, 102] });
    const out = m.apply(inputs, f32([...new Array(8).fill(1), 0, 0, 1, 1, 0, 1, 1, 1]), [0, 0], space);
    expect(out.x.shape).toEqual([2, 8]);
    expect(Array.from(out.x.data as BigInt64Array)).toEqual([101n, 7n, 8n, 102n, 5n, 6n, 102n, 0n, 101n, 0n, 8n, 102n, 0n, 6n, 102n, 0n]);
    expect(Array.from((out.attention_mask.data as BigInt64Array).subarray(8))).toEqual([1n, 1n, 1n, 1n, 1n, 1n, 1n, 0n]);
    const m2 = MASKERS.pad.create({ use: 'pad', padId: 9, attention: true });
    const out2 = m2.apply(inputs, none, [0], space);
    expect(Array.from(out2.x.data as BigInt64Array)).toEqual([9n, 9n, 9n, 9n, 9n, 9n, 9n, 0n]);
    expect(Array.from(out2.attention_mask.data as BigInt64Array)).toEqual(new Array(8).fill(0n));
    expect(() => MASKERS.attention.create({ use: 'attention', keepSegmentB: true }).apply({ x: inputs.x }, none, [0], space)).toThrow(/token_type_ids/);
    expect(() => MASKERS.attention.create({ use: 'attention' }).apply({ x: { data: f32([1, 2]), shape: [1, 2] } }, f32([1, 1]), [0], space)).toThrow(/int64/);
  });

  it('agree with the rule written out on BigInts, for ids beyond 32 bits, negative ids and a special id beyond 32 bits', () => {
    // random rows: ids that do and do not fit in int32 (the masker reads int64 words as int32 pairs when it can)
    let seed = 7;
    const rand = (n: number): number => ((seed = (seed * 16807) % 2147483647) % n);
    const B = 5;
    const L = 12;
    const pick = (): bigint => [0n, 1n, 101n, 102n, 7n, -3n, 2n ** 33n + 101n, 2n ** 33n, -(2n ** 40n)][rand(9)];
    const ids = BigInt64Array.from({ length: B * L }, pick);
    const am = BigInt64Array.from({ length: B * L }, () => (rand(5) === 0 ? 0n : 1n));
    const tt = BigInt64Array.from({ length: B * L }, () => BigInt(rand(2)));
    const stm = BigInt64Array.from({ length: B * L }, () => (rand(6) === 0 ? 1n : 0n));
    const inp: Inputs = { x: { data: ids, shape: [B, L] }, attention_mask: { data: am, shape: [B, L] }, token_type_ids: { data: tt, shape: [B, L] }, special_tokens_mask: { data: stm, shape: [B, L] } };
    const sp = FEATURE_SPACES.tokens.create({}, inp);
    const rows = [3, 0, 4, 4, 1, 2];
    const masks = Float32Array.from({ length: rows.length * L }, () => rand(3) / 2);
    const cases = [
      { use: 'attention', keep: [0, -1], specialIds: [101, 102], keepSegmentB: true },
      { use: 'attention', maskId: 103 },
      { use: 'pad', padId: 9, attention: true, specialIds: [2 ** 33] }, // not an int32: the BigInt loop
      { use: 'pad', specialIds: [101] },
    ];
    for (const o of cases) {
      const out = MASKERS[o.use].create(o).apply(inp, masks, rows, sp);
      const keepPos = new Set(((o as { keep?: number[] }).keep ?? []).map((k) => (k < 0 ? L + k : k)));
      const special = new Set(((o as { specialIds?: number[] }).specialIds ?? []).map((v) => BigInt(v)));
      const rep = (o as { maskId?: number }).maskId ?? (o as { padId?: number }).padId ?? (o.use === 'pad' ? 0 : undefined);
      const drop = o.use === 'attention' || (o as { attention?: boolean }).attention === true;
      const wantIds: bigint[] = [];
      const wantAm: bigint[] = [];
      rows.forEach((r, i) => {
        for (let k = 0; k < L; k++) {
          const s = r * L + k;
          const removed = masks[i * L + k] < 0.5 && am[s] !== 0n && !keepPos.has(k) && !special.has(ids[s]) && stm[s] === 0n && !((o as { keepSegmentB?: boolean }).keepSegmentB && tt[s] === 1n);
          wantIds.push(removed && rep !== undefined ? BigInt(rep) : ids[s]);
          wantAm.push(removed && drop ? 0n : am[s]);
        }
      });
      expect(Array.from(out.x.data as BigInt64Array), JSON.stringify(o)).toEqual(wantIds);
      expect(Array.from(out.attention_mask.data as BigInt64Array), JSON.stringify(o)).toEqual(wantAm);
    }
  });
});

describe('patches fast path', () => {
  it('zero and mean blends on patches equal expand-then-blend exactly (channels, partial patches, soft masks, aux)', () => {
    const B = 2;
    const row = 3 * 5 * 7;
    const x = Float32Array.from({ length: B * row }, (_, i) => Math.sin(i * 1.7) * 3 - 0.25);
    const inputs: Inputs = { x: { data: x, shape: [B, 3, 5, 7] }, extra: { data: f32([7, 8]), shape: [B, 1] } };
    const space = FEATURE_SPACES.patches.create({ size: [2, 3] }, inputs); // 3×3 grid, partial edge patches
    const d = space.numFeatures;
    const rows = [1, 0, 1, 1];
    const masks = Float32Array.from({ length: rows.length * d }, (_, i) => [0, 1, 0.3, 1, 0.75][i % 5]);
    const M = space.expand(masks, rows, inputs).data;
    const mu = Float32Array.from({ length: row }, (_, j) => Math.cos(j) * 0.5);
    const zero = MASKERS.zero.create({ use: 'zero' }).apply(inputs, masks, rows, space);
    const mean = MASKERS.mean.create({ use: 'mean', reference: { x: { data: Float32Array.from([...mu, ...mu]), shape: [2, 3, 5, 7] } } }).apply(inputs, masks, rows, space);
    const wantZero = new Float32Array(rows.length * row);
    const wantMean = new Float32Array(rows.length * row);
    for (let r = 0; r < rows.length; r++) for (let j = 0; j < row; j++) {
      const xv = x[rows[r] * row + j];
      const m = M[r * row + j];
      wantZero[r * row + j] = m * xv;
      wantMean[r * row + j] = mu[j] + (xv - mu[j]) * m;
    }
    expect(zero.x.shape).toEqual([4, 3, 5, 7]);
    expect(Array.from(zero.x.data as Float32Array)).toEqual(Array.from(wantZero));
    expect(Array.from(mean.x.data as Float32Array)).toEqual(Array.from(wantMean));
    expect(Array.from(zero.extra.data as Float32Array)).toEqual([8, 7, 8, 8]);
    expect(() => MASKERS.zero.create({ use: 'zero' }).apply(inputs, masks, [0, 2, 0, 0], space)).toThrow(UserError);
  });
});

describe('takeRows', () => {
  it('copies rows bit for bit (NaN payloads, int64 beyond 32 bits), short rows word by word and long rows by blocks', async () => {
    const { takeRows } = await import('../src/tensor.js');
    for (const width of [3, 64, 65, 200]) {
      const n = 4;
      const f = new Float32Array(n * width);
      const bits = new Uint32Array(f.buffer);
      for (let i = 0; i < bits.length; i++) bits[i] = (Math.imul(i + 1, 2654435761) >>> 0) | (i % 7 === 0 ? 0x7f800001 : 0); // some signalling NaNs
      const ids = BigInt64Array.from({ length: n * width }, (_, i) => BigInt(i) * 3n ** 25n - 2n ** 40n);
      const rows = [2, 0, 3, 3, 1];
      const tf = takeRows({ data: f, shape: [n, width] }, rows);
      const ti = takeRows({ data: ids, shape: [n, width] }, rows);
      expect(tf.shape).toEqual([rows.length, width]);
      const got = new Uint32Array(tf.data.buffer);
      rows.forEach((r, i) => {
        for (let k = 0; k < width; k++) {
          expect(got[i * width + k]).toBe(bits[r * width + k]);
          expect(ti.data[i * width + k]).toBe(ids[r * width + k]);
        }
      });
    }
  });
});
