import { describe, expect, it } from 'vitest';
import { syntheticProduct, syntheticRelevant, syntheticShapes, syntheticText } from '../src/data/synthetic.js';
import { splitIndices } from '../src/data/split.js';
import { UserError } from '../src/errors.js';

function counts(labels: Float32Array, k: number): number[] {
  const c = new Array(k).fill(0);
  for (const l of labels) c[l]++;
  return c;
}

describe('splitIndices', () => {
  it('partitions 0..n-1 with the requested test size, seeded', () => {
    const a = splitIndices(10, 0.2, 3);
    expect(a.test.length).toBe(2);
    expect(a.train.length).toBe(8);
    expect([...a.train, ...a.test].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(splitIndices(10, 0.2, 3)).toEqual(a);
    expect(() => splitIndices(10, 1.5, 0)).toThrow(UserError);
  });
});

describe('syntheticRelevant', () => {
  it('has the documented shapes, balanced classes and seeded relevant positions', () => {
    const ds = syntheticRelevant({ n: 1000, features: 10, relevant: 5, seed: 1 });
    expect(ds.modality).toBe('tabular');
    expect(ds.train.inputs.x.shape).toEqual([800, 10]);
    expect(ds.test.inputs.x.shape).toEqual([200, 10]);
    expect(ds.featureNames).toEqual(['f0', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7', 'f8', 'f9']);
    expect(ds.relevantFeatures).toHaveLength(5);
    const all = new Float32Array([...ds.train.labels, ...ds.test.labels]);
    expect(counts(all, 2)).toEqual([500, 500]);
    expect(ds.train.featureMasks!.length).toBe(800 * 10);
    for (let j = 0; j < 10; j++) expect(ds.train.featureMasks![j]).toBe(ds.relevantFeatures!.includes(j) ? 1 : 0);
    const three = syntheticRelevant({ n: 999, classes: 3, seed: 1 });
    expect(counts(new Float32Array([...three.train.labels, ...three.test.labels]), 3)).toEqual([333, 333, 333]);
  });

  it('is deterministic by seed and differs across seeds', () => {
    const a = syntheticRelevant({ n: 200, seed: 7 });
    const b = syntheticRelevant({ n: 200, seed: 7 });
    const c = syntheticRelevant({ n: 200, seed: 8 });
    expect(b.train.inputs.x.data).toEqual(a.train.inputs.x.data);
    expect(b.train.labels).toEqual(a.train.labels);
    expect(b.relevantFeatures).toEqual(a.relevantFeatures);
    expect(c.train.inputs.x.data).not.toEqual(a.train.inputs.x.data);
  });

  it('labels depend only on the relevant features', () => {
    // Irrelevant columns are independent noise: their correlation with the label is near zero, while a
    // nearest-neighbour classifier on the relevant columns alone does far better than chance.
    const ds = syntheticRelevant({ n: 2000, features: 10, relevant: 3, seed: 2 });
    const x = ds.train.inputs.x.data as Float32Array;
    const tx = ds.test.inputs.x.data as Float32Array;
    const y = ds.train.labels;
    const n = y.length;
    const rel = ds.relevantFeatures!;
    const test = ds.test;
    let correct = 0;
    for (let t = 0; t < test.labels.length; t++) {
      let best = Infinity;
      let lab = 0;
      for (let i = 0; i < n; i++) {
        let dist = 0;
        for (const j of rel) dist += (x[i * 10 + j] - tx[t * 10 + j]) ** 2;
        if (dist < best) {
          best = dist;
          lab = y[i];
        }
      }
      if (lab === test.labels[t]) correct++;
    }
    expect(correct / test.labels.length).toBeGreaterThan(0.85);
  });

  it('rejects relevant > features', () => {
    expect(() => syntheticRelevant({ features: 3, relevant: 4 })).toThrow(UserError);
  });
});

describe('syntheticProduct', () => {
  it('labels are the sign of the sum of group products', () => {
    const ds = syntheticProduct({ n: 500, seed: 3 });
    expect(ds.trueGroups).toEqual([[0, 1], [2, 3], [4, 5]]);
    expect(ds.relevantFeatures).toEqual([0, 1, 2, 3, 4, 5]);
    const x = ds.test.inputs.x.data as Float32Array;
    for (let i = 0; i < ds.test.labels.length; i++) {
      const s = x[i * 8] * x[i * 8 + 1] + x[i * 8 + 2] * x[i * 8 + 3] + x[i * 8 + 4] * x[i * 8 + 5];
      expect(ds.test.labels[i]).toBe(s > 0 ? 1 : 0);
    }
    const again = syntheticProduct({ n: 500, seed: 3 });
    expect(again.train.inputs.x.data).toEqual(ds.train.inputs.x.data);
    expect(() => syntheticProduct({ features: 4, groups: [[0, 5]] })).toThrow(/outside 0..3/);
  });
});

describe('syntheticShapes', () => {
  it('makes [n,1,s,s] images in [0,1] with object masks that match the bright pixels', () => {
    const ds = syntheticShapes({ n: 60, size: 16, seed: 4, noise: 0 });
    expect(ds.modality).toBe('image');
    expect(ds.train.inputs.x.shape).toEqual([48, 1, 16, 16]);
    expect(ds.train.inputMasks!.shape).toEqual([48, 16, 16]);
    const x = ds.train.inputs.x.data as Float32Array;
    const m = ds.train.inputMasks!.data;
    let dev = 0;
    for (let i = 0; i < x.length; i++) dev = Math.max(dev, Math.abs(x[i] - (m[i] ? 0.85 : 0.15)));
    expect(dev).toBeLessThan(1e-6);
    // each image has one object with a reasonable area
    for (let r = 0; r < 48; r++) {
      let area = 0;
      for (let p = 0; p < 256; p++) area += m[r * 256 + p];
      expect(area).toBeGreaterThan(5);
      expect(area).toBeLessThanOrEqual(81);
    }
    const noisy = syntheticShapes({ n: 30, seed: 4 });
    const xd = noisy.train.inputs.x.data as Float32Array;
    expect(Math.min(...xd)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xd)).toBeLessThanOrEqual(1);
    expect(counts(new Float32Array([...noisy.train.labels, ...noisy.test.labels]), 3)).toEqual([10, 10, 10]);
    expect(syntheticShapes({ n: 30, seed: 4 }).test.inputs.x.data).toEqual(noisy.test.inputs.x.data);
  });
});

describe('syntheticText', () => {
  it('one cue word decides the label; rationales point at it', () => {
    const ds = syntheticText({ n: 100, seed: 5 });
    expect(ds.modality).toBe('text');
    const pos = new Set(['great', 'excellent', 'wonderful', 'superb']);
    const neg = new Set(['awful', 'terrible', 'horrible', 'dreadful']);
    const split = ds.train;
    expect(split.texts).toHaveLength(80);
    const vocab = ds.meta!.vocab as string[];
    const L = split.inputs.x.shape[1];
    for (let i = 0; i < 80; i++) {
      const [[s, e]] = split.rationales![i];
      const cue = split.texts![i].slice(s, e);
      expect(pos.has(cue) || neg.has(cue)).toBe(true);
      expect(split.labels[i]).toBe(pos.has(cue) ? 1 : 0);
      const words = split.texts![i].split(' ');
      expect(words.filter((w) => pos.has(w) || neg.has(w))).toEqual([cue]);
      // word-level encoding round-trips and the feature mask marks the cue word
      const ids = Array.from(split.inputs.x.data.subarray(i * L, (i + 1) * L) as BigInt64Array, Number);
      expect(ids.slice(0, words.length).map((k) => vocab[k])).toEqual(words);
      expect(ids.slice(words.length).every((k) => k === 0)).toBe(true);
      const fm = Array.from(split.featureMasks!.subarray(i * L, (i + 1) * L));
      expect(vocab[ids[fm.indexOf(1)]]).toBe(cue);
      expect(Number((split.inputs.attention_mask.data as BigInt64Array)[i * L + words.length - 1])).toBe(1);
    }
    expect(syntheticText({ n: 100, seed: 5 }).train.texts).toEqual(split.texts);
  });
});
