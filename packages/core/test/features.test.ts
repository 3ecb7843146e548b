import { describe, expect, it } from 'vitest';
import { FEATURE_SPACES } from '../src/features/registry.js';
import { PatchesSpace } from '../src/features/patches.js';
import type { FeatureSpace } from '../src/feature-space.js';
import type { Inputs } from '../src/inputs.js';
import { Rng } from '../src/rng.js';
import { UserError } from '../src/errors.js';
import { createContainer, listPlugins } from '../src/di/container.js';
import { coreModule } from '../src/module.js';

const f32 = (a: number[]) => Float32Array.from(a);

function image(B: number, C: number, H: number, W: number): Inputs {
  const x = new Float32Array(B * C * H * W);
  for (let i = 0; i < x.length; i++) x[i] = i;
  return { x: { data: x, shape: [B, C, H, W] } };
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** <expand(m), a> = <m, aggregate(a)> for random m, a (rows = identity). */
function checkAdjoint(space: FeatureSpace, inputs: Inputs, seed = 0): void {
  const rng = new Rng(seed);
  const B = inputs.x.shape[0];
  const d = space.numFeatures;
  const m = new Float32Array(B * d).map(() => rng.normal());
  const a = new Float32Array(inputs.x.data.length).map(() => rng.normal());
  const rows = Int32Array.from({ length: B }, (_, i) => i);
  const e = space.expand(m, rows, inputs);
  expect(e.shape).toEqual(inputs.x.shape);
  const g = space.aggregate({ data: a, shape: [...inputs.x.shape] }, inputs);
  expect(g.shape).toEqual([B, d]);
  expect(dot(e.data, a)).toBeCloseTo(dot(m, g.data), 3);
}

describe('columns', () => {
  it('copies masks, names, values and is self-adjoint', () => {
    const inputs: Inputs = { x: { data: f32([1, 2, 3, 4, 5, 6]), shape: [2, 3] } };
    const s = FEATURE_SPACES.columns.create({ names: ['a', 'b', 'c'] }, inputs);
    expect(s.numFeatures).toBe(3);
    expect(s.grid).toEqual([3]);
    expect(s.featureNames()).toEqual(['a', 'b', 'c']);
    const e = s.expand(f32([1, 0, 1, 0, 0, 1, 1, 1, 0]), [1, 0, 1], inputs);
    expect(e.shape).toEqual([3, 3]);
    expect(Array.from(e.data)).toEqual([1, 0, 1, 0, 0, 1, 1, 1, 0]);
    const v = s.featureValues(inputs);
    expect(v.shape).toEqual([2, 3, 1]);
    expect(Array.from(v.data)).toEqual([1, 2, 3, 4, 5, 6]);
    checkAdjoint(s, inputs);
    expect(() => s.expand(f32([1, 0]), [0], inputs)).toThrow(UserError);
    expect(() => s.expand(f32([1, 0, 1]), [5], inputs)).toThrow(/row 5 is out of range/);
    expect(() => FEATURE_SPACES.columns.create({ names: ['a'] }, inputs)).toThrow(/expected 3 names/);
  });
});

describe('patches', () => {
  it('2×2 patches on a 4×6 image: grid [2, 3], hand-computed expansion', () => {
    const inputs = image(1, 2, 4, 6);
    const s = FEATURE_SPACES.patches.create({ size: [2, 2] }, inputs);
    expect(s.grid).toEqual([2, 3]);
    expect(s.numFeatures).toBe(6);
    expect(s.featureNames()[4]).toBe('patch 1,1');
    const e = s.expand(f32([1, 0, 1, 0, 1, 0]), [0], inputs);
    expect(e.shape).toEqual([1, 2, 4, 6]);
    const plane = [
      [1, 1, 0, 0, 1, 1],
      [1, 1, 0, 0, 1, 1],
      [0, 0, 1, 1, 0, 0],
      [0, 0, 1, 1, 0, 0],
    ].flat();
    expect(Array.from(e.data)).toEqual([...plane, ...plane]);
  });

  it('3×4 patches on a 4×6 image: partial edge patches (ceil)', () => {
    const inputs = image(2, 1, 4, 6);
    const s = FEATURE_SPACES.patches.create({ size: [3, 4] }, inputs) as PatchesSpace;
    expect(s.grid).toEqual([2, 2]);
    const e = s.expand(f32([1, 0, 0, 1, 0, 0, 1, 0]), [0, 1], inputs);
    expect(Array.from(e.data.subarray(0, 24))).toEqual([
      [1, 1, 1, 1, 0, 0],
      [1, 1, 1, 1, 0, 0],
      [1, 1, 1, 1, 0, 0],
      [0, 0, 0, 0, 1, 1],
    ].flat());
    expect(Array.from(e.data.subarray(24))).toEqual([
      [0, 0, 0, 0, 0, 0],
      [0, 0, 0, 0, 0, 0],
      [0, 0, 0, 0, 0, 0],
      [1, 1, 1, 1, 0, 0],
    ].flat());
    // featureValues: [B, 4, 12]; patch 1 of example 0 = rows 0-2, cols 4-5, zero padded to 4 columns
    const v = s.featureValues(inputs);
    expect(v.shape).toEqual([2, 4, 12]);
    expect(Array.from(v.data.subarray(12, 24))).toEqual([4, 5, 0, 0, 10, 11, 0, 0, 16, 17, 0, 0]);
    // patch 2 of example 1 = row 3, cols 0-3 (+24 offset)
    expect(Array.from(v.data.subarray((4 + 2) * 12, (4 + 3) * 12))).toEqual([42, 43, 44, 45, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('aggregate sums patches over channels and is the adjoint of expand', () => {
    const inputs = image(1, 2, 4, 6);
    const s = FEATURE_SPACES.patches.create({ size: [3, 4] }, inputs);
    const g = s.aggregate(inputs.x as { data: Float32Array; shape: number[] }, inputs);
    // channel 0 holds 0..23, channel 1 holds 24..47 (= channel 0 + 24)
    const p0 = [0, 1, 2, 3, 6, 7, 8, 9, 12, 13, 14, 15].reduce((a, b) => a + b, 0);
    const p1 = [4, 5, 10, 11, 16, 17].reduce((a, b) => a + b, 0);
    const p2 = [18, 19, 20, 21].reduce((a, b) => a + b, 0);
    const p3 = 22 + 23;
    expect(Array.from(g.data)).toEqual([2 * p0 + 24 * 12, 2 * p1 + 24 * 6, 2 * p2 + 24 * 4, 2 * p3 + 24 * 2]);
    checkAdjoint(s, inputs, 1);
    checkAdjoint(FEATURE_SPACES.patches.create({ size: [3, 2] }, image(3, 3, 7, 5)), image(3, 3, 7, 5), 3);
    checkAdjoint(FEATURE_SPACES.patches.create({ size: 2 }, image(2, 3, 7, 5)), image(2, 3, 7, 5), 2);
    expect(() => s.expand(f32([1, 1, 1, 1]), [0], image(1, 2, 5, 6))).toThrow(/built for \[2, 4, 6\]/);
    expect(() => FEATURE_SPACES.patches.create({}, { x: { data: f32([1, 2]), shape: [1, 2] } })).toThrow(UserError);
    expect(FEATURE_SPACES.patches.create({}, image(1, 3, 224, 224)).grid).toEqual([14, 14]);
  });
});

describe('tokens', () => {
  const ids: Inputs = {
    x: { data: BigInt64Array.from([101n, 7n, 8n, 102n, 0n, 101n, 9n, 102n, 0n, 0n]), shape: [2, 5] },
    attention_mask: { data: BigInt64Array.from([1n, 1n, 1n, 1n, 0n, 1n, 1n, 1n, 0n, 0n]), shape: [2, 5] },
  };
  it('positions are features; validFeatures from attention_mask; values zeros or ids', () => {
    const s = FEATURE_SPACES.tokens.create({}, ids);
    expect(s.numFeatures).toBe(5);
    expect(s.grid).toEqual([5]);
    expect(Array.from(s.validFeatures!(ids))).toEqual([1, 1, 1, 1, 0, 1, 1, 1, 0, 0]);
    expect(Array.from(s.expand(f32([1, 0, 1, 0, 1]), [1], ids).data)).toEqual([1, 0, 1, 0, 1]);
    expect(Array.from(s.featureValues(ids).data)).toEqual(new Array(10).fill(0));
    const withIds = FEATURE_SPACES.tokens.create({ values: 'ids' }, ids);
    expect(Array.from(withIds.featureValues(ids).data.subarray(0, 5))).toEqual([101, 7, 8, 102, 0]);
    // embedding-level attribution [B, L, 2] sums the last axis
    const att = { data: Float32Array.from({ length: 20 }, (_, i) => i), shape: [2, 5, 2] };
    expect(Array.from(s.aggregate(att, ids).data)).toEqual([1, 5, 9, 13, 17, 21, 25, 29, 33, 37]);
    checkAdjoint(s, ids);
  });
});

describe('segments', () => {
  it('expands with each row’s own map; aggregate is its adjoint; values are segment means', () => {
    const seg = BigInt64Array.from([
      // example 0: left/right halves
      0n, 0n, 1n, 1n,
      0n, 0n, 1n, 1n,
      // example 1: top/bottom, segment 2 in one corner
      0n, 0n, 0n, 2n,
      1n, 1n, 1n, 1n,
    ]);
    const inputs: Inputs = { x: { data: Float32Array.from({ length: 16 }, (_, i) => i), shape: [2, 1, 2, 4] }, segments: { data: seg, shape: [2, 2, 4] } };
    const s = FEATURE_SPACES.segments.create({}, inputs);
    expect(s.numFeatures).toBe(3);
    const e = s.expand(f32([1, 0, 0, 1, 0, 0, 0, 0, 1]), [0, 1, 1], inputs);
    expect(Array.from(e.data)).toEqual([1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    checkAdjoint(s, inputs);
    const v = s.featureValues(inputs);
    expect(v.shape).toEqual([2, 3, 4]);
    // example 0 segment 0: pixels 0,1,4,5 → mean 2.5, area 0.5, centroid y (0+0+1+1)/4/2 = 0.25, x (0+1+0+1)/4/4 = 0.125
    expect(Array.from(v.data.subarray(0, 4))).toEqual([2.5, 0.5, 0.25, 0.125]);
    // example 0 segment 2 is empty
    expect(Array.from(v.data.subarray(8, 12))).toEqual([0, 0, 0, 0]);
    expect(Array.from(s.validFeatures!(inputs))).toEqual([1, 1, 0, 1, 1, 1]);
    const bad: Inputs = { ...inputs, segments: { data: seg.map((v) => (v === 2n ? 5n : v)), shape: [2, 2, 4] } };
    expect(() => s.expand(f32([1, 1, 1]), [1], bad)).toThrow(/label 5 at example 1, pixel 3 is outside 0..2/);
    expect(() => s.expand(f32([1, 1, 1]), [0], { x: inputs.x })).toThrow(/segments is missing/);
  });
});

describe('registration', () => {
  it('binds every feature space and masker', async () => {
    const c = await createContainer([coreModule]);
    expect(listPlugins(c).features).toEqual(['columns', 'patches', 'segments', 'tokens']);
    expect(listPlugins(c).masker).toEqual(['attention', 'blur', 'mean', 'pad', 'zero']);
  });
});

describe('inputMasksToFeatures', () => {
  it('turns object masks into patch masks by covered fraction', async () => {
    const { inputMasksToFeatures } = await import('../src/features/ground-truth.js');
    const inputs = image(1, 2, 4, 6);
    const space = FEATURE_SPACES.patches.create({ size: [2, 2] }, inputs);
    // object covers rows 0-1, cols 0-2 → patch 0 fully, patch 1 half, others not
    const mask = new Float32Array(24);
    for (let y = 0; y < 2; y++) for (let x = 0; x < 3; x++) mask[y * 6 + x] = 1;
    const frac = inputMasksToFeatures(space, inputs, { data: mask, shape: [1, 4, 6] }, null);
    expect(Array.from(frac)).toEqual([1, 0.5, 0, 0, 0, 0]);
    expect(Array.from(inputMasksToFeatures(space, inputs, { data: mask, shape: [1, 4, 6] }, 0.6))).toEqual([1, 0, 0, 0, 0, 0]);
    expect(() => inputMasksToFeatures(space, inputs, { data: new Float32Array(5), shape: [1, 5] })).toThrow(UserError);
  });
});
