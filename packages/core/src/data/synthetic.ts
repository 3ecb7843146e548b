import type { Dataset } from '../dataset.js';
import { Rng } from '../rng.js';
import { UserError } from '../errors.js';
import { splitFull, type FullData } from './split.js';

/**
 * Seeded synthetic data sets with known ground truth (methods note §9.10). Every generator draws all its randomness
 * from one `Rng(seed)`, so equal options give bit-identical data sets; each returns a full {@link Dataset} split
 * train/test with a seeded shuffle (`testFraction`, default 0.2).
 */

export interface SyntheticRelevantOptions {
  n?: number;
  features?: number;
  relevant?: number;
  classes?: number;
  seed?: number;
  testFraction?: number;
}

export interface SyntheticProductOptions {
  n?: number;
  features?: number;
  groups?: number[][];
  seed?: number;
  testFraction?: number;
}

export interface SyntheticShapesOptions {
  n?: number;
  size?: number;
  seed?: number;
  testFraction?: number;
  /** Std of the Gaussian pixel noise (default 0.08). */
  noise?: number;
}

export interface SyntheticTextOptions {
  n?: number;
  seed?: number;
  testFraction?: number;
  /** Number of neutral words per text: [min, max] (default [5, 11]). */
  length?: [number, number];
}

function posInt(v: number, what: string, min = 1): number {
  if (!Number.isInteger(v) || v < min) throw new UserError(`${what} must be an integer ≥ ${min}, got ${v}`, `set ${what} to an integer ≥ ${min}`);
  return v;
}

function fraction(v: number): number {
  if (!(typeof v === 'number' && v >= 0 && v < 1)) throw new UserError(`testFraction must be in [0, 1), got ${v}`, 'set testFraction to e.g. 0.2');
  return v;
}

function featureNamesFor(d: number): string[] {
  return Array.from({ length: d }, (_, i) => `f${i}`);
}

/** Rank-based class boundaries so that every class gets ⌊n/classes⌋ or ⌈n/classes⌉ rows. */
function quantileLabels(score: Float64Array, classes: number): Float32Array {
  const n = score.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => score[a] - score[b] || a - b);
  const labels = new Float32Array(n);
  for (let r = 0; r < n; r++) labels[order[r]] = Math.min(classes - 1, Math.floor((r * classes) / n));
  return labels;
}

/**
 * Tabular data where only `relevant` of `features` columns matter (ScoresActivation's setting). x ~ N(0, 1). The
 * relevant columns sit at seeded random positions; the class comes from the score
 *   s(x) = Σ_j w_j·tanh(1.5·x_{r_j}) + Σ_j v_j·x_{r_j}·x_{r_{j+1 mod r}}
 * with fixed seeded weights |w_j| ∈ [0.6, 1.2], |v_j| ∈ [0.3, 0.6] (every relevant feature enters both a
 * saturating term and a pairwise product). Classes are score quantiles over the n rows, so they are balanced
 * (binary: sign of s minus its median). Irrelevant columns are pure noise. `featureMasks` marks the relevant
 * columns in every row.
 */
export function syntheticRelevant(options: SyntheticRelevantOptions = {}): Dataset {
  const n = posInt(options.n ?? 2000, 'n', 2);
  const d = posInt(options.features ?? 10, 'features');
  const r = posInt(options.relevant ?? 5, 'relevant');
  const classes = posInt(options.classes ?? 2, 'classes', 2);
  const seed = options.seed ?? 0;
  const testFraction = fraction(options.testFraction ?? 0.2);
  if (r > d) throw new UserError(`relevant (${r}) exceeds features (${d})`, 'set relevant ≤ features');
  const rng = new Rng(seed);
  const structure = rng.fork();
  const dataRng = rng.fork();
  const splitSeed = rng.nextU32();
  const positions = Array.from(structure.permutation(d).subarray(0, r)).sort((a, b) => a - b);
  const w = Array.from({ length: r }, () => (structure.next() < 0.5 ? -1 : 1) * (0.6 + 0.6 * structure.next()));
  const v = Array.from({ length: r }, () => (structure.next() < 0.5 ? -1 : 1) * (0.3 + 0.3 * structure.next()));
  const x = new Float32Array(n * d);
  for (let i = 0; i < x.length; i++) x[i] = dataRng.normal();
  const score = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < r; j++) {
      const a = x[i * d + positions[j]];
      s += w[j] * Math.tanh(1.5 * a);
      if (r > 1 && !(r === 2 && j === 1)) s += v[j] * a * x[i * d + positions[(j + 1) % r]];
    }
    score[i] = s;
  }
  const labels = quantileLabels(score, classes);
  const fm = new Float32Array(n * d);
  for (let i = 0; i < n; i++) for (const p of positions) fm[i * d + p] = 1;
  const full: FullData = { inputs: { x: { data: x, shape: [n, d] } }, labels, featureMasks: { data: fm, width: d } };
  const { train, test } = splitFull(full, testFraction, splitSeed);
  return {
    name: 'synthetic-relevant',
    task: 'classification',
    modality: 'tabular',
    numOutputs: classes,
    classNames: Array.from({ length: classes }, (_, i) => `class ${i}`),
    featureNames: featureNamesFor(d),
    relevantFeatures: positions,
    train,
    test,
    meta: { generator: 'synthetic-relevant', seed, n, features: d, relevant: r, classes, weights: { tanh: w, product: v } },
  };
}

/**
 * The SOP paper's theory setting: x ~ N(0, 1) [n, features], label = 1[Σ_g Π_{i∈g} x_i > 0]. Groups aligned with
 * `groups` explain the label exactly. `trueGroups` = groups, `relevantFeatures` = their union (sorted);
 * `featureMasks` marks the union in every row.
 */
export function syntheticProduct(options: SyntheticProductOptions = {}): Dataset {
  const n = posInt(options.n ?? 2000, 'n', 2);
  const d = posInt(options.features ?? 8, 'features');
  const groups = options.groups ?? [[0, 1], [2, 3], [4, 5]];
  const seed = options.seed ?? 0;
  const testFraction = fraction(options.testFraction ?? 0.2);
  if (!Array.isArray(groups) || groups.length === 0) throw new UserError('groups must be a non-empty list of feature-index lists', 'e.g. groups: [[0, 1], [2, 3]]');
  for (const g of groups) {
    if (!Array.isArray(g) || g.length === 0) throw new UserError(`group ${JSON.stringify(g)} must be a non-empty list of feature indices`, 'e.g. groups: [[0, 1], [2, 3]]');
    for (const i of g) {
      if (!Number.isInteger(i) || i < 0 || i >= d) {
        throw new UserError(`group ${JSON.stringify(g)} names feature ${i}, outside 0..${d - 1}`, `use indices below features (${d}) or raise features`);
      }
    }
  }
  const rng = new Rng(seed);
  const dataRng = rng.fork();
  const splitSeed = rng.nextU32();
  const x = new Float32Array(n * d);
  for (let i = 0; i < x.length; i++) x[i] = dataRng.normal();
  const labels = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (const g of groups) {
      let p = 1;
      for (const j of g) p *= x[i * d + j];
      s += p;
    }
    labels[i] = s > 0 ? 1 : 0;
  }
  const relevant = [...new Set(groups.flat())].sort((a, b) => a - b);
  const fm = new Float32Array(n * d);
  for (let i = 0; i < n; i++) for (const p of relevant) fm[i * d + p] = 1;
  const full: FullData = { inputs: { x: { data: x, shape: [n, d] } }, labels, featureMasks: { data: fm, width: d } };
  const { train, test } = splitFull(full, testFraction, splitSeed);
  return {
    name: 'synthetic-product',
    task: 'classification',
    modality: 'tabular',
    numOutputs: 2,
    classNames: ['negative', 'positive'],
    featureNames: featureNamesFor(d),
    relevantFeatures: relevant,
    trueGroups: groups.map((g) => [...g]),
    train,
    test,
    meta: { generator: 'synthetic-product', seed, n, features: d, groups },
  };
}

export const SHAPE_CLASSES = ['square', 'disc', 'triangle'] as const;

/**
 * Single-channel images [n, 1, size, size] in [0, 1]: a dark noisy background (≈0.15) with one bright object
 * (≈0.85) — a filled square, disc or upward triangle (classes 0, 1, 2, balanced: row i has class i mod 3) of side
 * ⌊0.3·size⌋..⌊0.55·size⌋ at a random position, fully inside the image. Gaussian noise (std `noise`) is added to
 * every pixel, then clipped to [0, 1]. `inputMasks` [n, size, size] is the object's mask (1 inside).
 */
export function syntheticShapes(options: SyntheticShapesOptions = {}): Dataset {
  const n = posInt(options.n ?? 600, 'n', 2);
  const size = posInt(options.size ?? 16, 'size', 6);
  const seed = options.seed ?? 0;
  const noise = options.noise ?? 0.08;
  const testFraction = fraction(options.testFraction ?? 0.2);
  const rng = new Rng(seed);
  const dataRng = rng.fork();
  const splitSeed = rng.nextU32();
  const hw = size * size;
  const x = new Float32Array(n * hw);
  const masks = new Float32Array(n * hw);
  const labels = new Float32Array(n);
  const minSide = Math.max(3, Math.floor(0.3 * size));
  const maxSide = Math.max(minSide, Math.floor(0.55 * size));
  for (let i = 0; i < n; i++) {
    const cls = i % 3;
    labels[i] = cls;
    const s = minSide + dataRng.int(maxSide - minSide + 1);
    const r0 = dataRng.int(size - s + 1);
    const c0 = dataRng.int(size - s + 1);
    const m = masks.subarray(i * hw, (i + 1) * hw);
    for (let dy = 0; dy < s; dy++) {
      for (let dx = 0; dx < s; dx++) {
        let inside: boolean;
        if (cls === 0) inside = true;
        else if (cls === 1) {
          const cy = dy + 0.5 - s / 2;
          const cx = dx + 0.5 - s / 2;
          inside = cy * cy + cx * cx <= (s / 2) * (s / 2);
        } else {
          // apex at the top row, base on the bottom row: half width grows linearly with the row
          const half = ((dy + 1) / s) * (s / 2);
          inside = Math.abs(dx + 0.5 - s / 2) <= half;
        }
        if (inside) m[(r0 + dy) * size + c0 + dx] = 1;
      }
    }
    for (let p = 0; p < hw; p++) {
      const base = m[p] ? 0.85 : 0.15;
      const val = base + noise * dataRng.normal();
      x[i * hw + p] = val < 0 ? 0 : val > 1 ? 1 : val;
    }
  }
  const full: FullData = {
    inputs: { x: { data: x, shape: [n, 1, size, size] } },
    labels,
    inputMasks: { data: masks, shape: [n, size, size] },
  };
  const { train, test } = splitFull(full, testFraction, splitSeed);
  return {
    name: 'synthetic-shapes',
    task: 'classification',
    modality: 'image',
    numOutputs: 3,
    classNames: [...SHAPE_CLASSES],
    train,
    test,
    meta: { generator: 'synthetic-shapes', seed, n, size, noise },
  };
}

export const TEXT_NEUTRAL_WORDS = [
  'the', 'movie', 'was', 'plot', 'actors', 'film', 'story', 'scene', 'and', 'it', 'really', 'quite', 'a', 'with',
  'this', 'ending', 'music', 'very', 'overall', 'character', 'camera', 'script', 'long', 'seemed',
] as const;
export const TEXT_POSITIVE_WORDS = ['great', 'excellent', 'wonderful', 'superb'] as const;
export const TEXT_NEGATIVE_WORDS = ['awful', 'terrible', 'horrible', 'dreadful'] as const;

/**
 * Binary sentiment-like texts: `length` neutral words from a small vocabulary with exactly one cue word inserted at a
 * random position; a positive cue ("great", "excellent", …) gives label 1, a negative one ("awful", "terrible", …)
 * label 0 (balanced: row i has label i mod 2). `rationales` holds the cue word's character span [start, end).
 *
 * Inputs: until a tokenizer-owning backbone re-encodes `texts` (Backbone.encode), `inputs.x` is a word-level
 * encoding: int64 ids [n, L] into `meta.vocab` (id 0 = "[PAD]"), L = longest text in words, padded with 0, with
 * `attention_mask` int64 [n, L]. `featureMasks` [n, L] marks the cue word's position at that word level (it is not
 * valid for a subword tokenizer's positions — re-derive from `rationales` after encoding).
 */
export function syntheticText(options: SyntheticTextOptions = {}): Dataset {
  const n = posInt(options.n ?? 600, 'n', 2);
  const seed = options.seed ?? 0;
  const testFraction = fraction(options.testFraction ?? 0.2);
  const [minLen, maxLen] = options.length ?? [5, 11];
  posInt(minLen, 'length[0]');
  if (!Number.isInteger(maxLen) || maxLen < minLen) throw new UserError(`length [${minLen}, ${maxLen}] is not a valid range`, 'set length to [min, max] with 1 ≤ min ≤ max');
  const rng = new Rng(seed);
  const dataRng = rng.fork();
  const splitSeed = rng.nextU32();
  const vocab = ['[PAD]', ...TEXT_NEUTRAL_WORDS, ...TEXT_POSITIVE_WORDS, ...TEXT_NEGATIVE_WORDS];
  const ids = new Map(vocab.map((w, i) => [w, i]));
  const texts: string[] = [];
  const rationales: Array<Array<[number, number]>> = [];
  const words: string[][] = [];
  const cuePos: number[] = [];
  const labels = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const label = i % 2 === 0 ? 1 : 0;
    labels[i] = label;
    const len = minLen + dataRng.int(maxLen - minLen + 1);
    const ws: string[] = [];
    for (let k = 0; k < len; k++) ws.push(TEXT_NEUTRAL_WORDS[dataRng.int(TEXT_NEUTRAL_WORDS.length)]);
    const cues = label === 1 ? TEXT_POSITIVE_WORDS : TEXT_NEGATIVE_WORDS;
    const cue = cues[dataRng.int(cues.length)];
    const at = dataRng.int(len + 1);
    ws.splice(at, 0, cue);
    let start = 0;
    for (let k = 0; k < at; k++) start += ws[k].length + 1;
    texts.push(ws.join(' '));
    rationales.push([[start, start + cue.length]]);
    words.push(ws);
    cuePos.push(at);
  }
  const L = Math.max(...words.map((w) => w.length));
  const x = new BigInt64Array(n * L);
  const am = new BigInt64Array(n * L);
  const fm = new Float32Array(n * L);
  for (let i = 0; i < n; i++) {
    words[i].forEach((w, k) => {
      x[i * L + k] = BigInt(ids.get(w)!);
      am[i * L + k] = 1n;
    });
    fm[i * L + cuePos[i]] = 1;
  }
  const full: FullData = {
    inputs: { x: { data: x, shape: [n, L] }, attention_mask: { data: am, shape: [n, L] } },
    labels,
    featureMasks: { data: fm, width: L },
    texts,
    rationales,
  };
  const { train, test } = splitFull(full, testFraction, splitSeed);
  return {
    name: 'synthetic-text',
    task: 'classification',
    modality: 'text',
    numOutputs: 2,
    classNames: ['negative', 'positive'],
    train,
    test,
    meta: { generator: 'synthetic-text', seed, n, vocab, encoding: 'word-level ids into meta.vocab; re-encode texts with a tokenizer' },
  };
}
