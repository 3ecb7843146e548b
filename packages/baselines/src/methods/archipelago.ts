/**
 * Archipelago (Tsang et al. 2020). ArchDetect: the pairwise interaction strength of features i, j is the squared
 * mixed difference f(x_{ij}) − f(x_i) − f(x_j) + f(x_∅) measured in two contexts, all other features removed (baseline
 * context) and all other features present (input context), averaged with weights 0.5 / 0.5. The `topK` (5) strongest
 * pairs are merged into groups (pairs sharing a feature join). ArchAttribute: each group I (merged groups, then every
 * remaining feature alone) scores φ(I) = f(x_I + x'_rest) − f(x'), x' the masker's baseline. Each feature's value is its
 * group's φ (as exlib paints groups); `groups` lists them per example, sorted by weight descending.
 * Cost (fixed; `budget` is not used): 2·(C(d,2) + d + 1) rows plus one per merged group of more than 2 features.
 */
import type { AttributeOptions, Attribution, AttributionContext, Attributor, FeatureGroup, Inputs } from '@sop/core';
import { BatchRunner, rowScores, scorePerturbations } from '../batching.js';
import { baselineMasker, finish, numberOption, scoreModeOf } from '../common.js';

function pairIndex(d: number, i: number, j: number): number {
  // i < j; pairs in row-major order of the upper triangle
  return i * d - (i * (i + 1)) / 2 + (j - i - 1);
}

export const archipelago: Attributor = {
  name: 'archipelago',
  access: 'black-box',
  async attribute(inputs: Inputs, context: AttributionContext, options: AttributeOptions = {}): Promise<Attribution> {
    const masker = baselineMasker(context, options);
    const runner = new BatchRunner(context, inputs, options, masker);
    const d = context.space.numFeatures;
    const B = inputs.x.shape[0];
    const mode = scoreModeOf(options, 'logit');
    const topK = numberOption(options, 'topK', 5, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer');
    const P = (d * (d - 1)) / 2;
    // layout per example: [full, empty, single i (d), all-but-i (d), pair ij (P), all-but-ij (P)], generated per chunk
    const per = 2 + 2 * d + 2 * P;
    const pairs = new Int32Array(2 * P);
    for (let i = 0, p = 0; i < d; i++) for (let j = i + 1; j < d; j++, p++) {
      pairs[2 * p] = i;
      pairs[2 * p + 1] = j;
    }
    const fill = (start: number, end: number, out: Float32Array): void => {
      for (let r = start; r < end; r++) {
        const k = r % per;
        const o = (r - start) * d;
        if (k === 0) out.fill(1, o, o + d);
        else if (k === 1) continue;
        else if (k < 2 + d) out[o + k - 2] = 1;
        else if (k < 2 + 2 * d) {
          out.fill(1, o, o + d);
          out[o + k - 2 - d] = 0;
        } else if (k < 2 + 2 * d + P) {
          const p = k - 2 - 2 * d;
          out[o + pairs[2 * p]] = 1;
          out[o + pairs[2 * p + 1]] = 1;
        } else {
          const p = k - 2 - 2 * d - P;
          out.fill(1, o, o + d);
          out[o + pairs[2 * p]] = 0;
          out[o + pairs[2 * p + 1]] = 0;
        }
      }
    };
    const { numOutputs: C, targets, scores: f } = await scorePerturbations(runner, inputs, fill, per, options, mode);

    const groupsPerExample: number[][][] = [];
    const interactions: { i: number; j: number; strength: number }[][] = [];
    const extra: { b: number; g: number }[] = [];
    const extraMasks: number[] = [];
    for (let b = 0; b < B; b++) {
      const o = b * per;
      const fx = f[o];
      const f0 = f[o + 1];
      const strengths: { i: number; j: number; strength: number }[] = [];
      for (let i = 0; i < d; i++) {
        for (let j = i + 1; j < d; j++) {
          const p = pairIndex(d, i, j);
          const base = f[o + 2 + 2 * d + p] - f[o + 2 + i] - f[o + 2 + j] + f0;
          const inp = fx - f[o + 2 + d + i] - f[o + 2 + d + j] + f[o + 2 + 2 * d + P + p];
          strengths.push({ i, j, strength: 0.5 * base * base + 0.5 * inp * inp });
        }
      }
      strengths.sort((a, c) => c.strength - a.strength || a.i - c.i || a.j - c.j);
      const top = strengths.slice(0, Math.min(topK, strengths.length));
      interactions.push(top);
      // merge overlapping pairs (union-find)
      const parent = Array.from({ length: d }, (_, i) => i);
      const find = (a: number): number => (parent[a] === a ? a : (parent[a] = find(parent[a])));
      const inGroup = new Array<boolean>(d).fill(false);
      for (const t of top) {
        inGroup[t.i] = inGroup[t.j] = true;
        const ri = find(t.i);
        const rj = find(t.j);
        if (ri !== rj) parent[Math.max(ri, rj)] = Math.min(ri, rj);
      }
      const byRoot = new Map<number, number[]>();
      for (let i = 0; i < d; i++) {
        if (!inGroup[i]) continue;
        const r = find(i);
        if (!byRoot.has(r)) byRoot.set(r, []);
        byRoot.get(r)!.push(i);
      }
      const groups = [...byRoot.values()];
      for (let i = 0; i < d; i++) if (!inGroup[i]) groups.push([i]);
      groupsPerExample.push(groups);
      groups.forEach((g, gi) => {
        if (g.length > 2) {
          extra.push({ b, g: gi });
          const m = new Array<number>(d).fill(0);
          for (const i of g) m[i] = 1;
          extraMasks.push(...m);
        }
      });
    }
    let fExtra: Float64Array = new Float64Array(0);
    if (extra.length) {
      const er = Int32Array.from(extra.map((e) => e.b));
      const eo = await runner.forwardMasked(inputs, Float32Array.from(extraMasks), er);
      fExtra = rowScores(eo, Int32Array.from(extra.map((e) => targets[e.b])), mode);
    }
    const values = new Float32Array(B * d);
    const groupsOut: FeatureGroup[][] = [];
    let ei = 0;
    for (let b = 0; b < B; b++) {
      const o = b * per;
      const f0 = f[o + 1];
      const list: FeatureGroup[] = [];
      for (const g of groupsPerExample[b]) {
        let v: number;
        if (g.length === 1) v = f[o + 2 + g[0]] - f0;
        else if (g.length === 2) v = f[o + 2 + 2 * d + pairIndex(d, g[0], g[1])] - f0;
        else v = fExtra[ei++] - f0;
        for (const i of g) values[b * d + i] = v;
        list.push({ features: g, weight: v });
      }
      list.sort((a, c) => c.weight - a.weight || a.features[0] - c.features[0]);
      groupsOut.push(list);
    }
    return finish('archipelago', values, d, targets, runner, options, { topK, interactions, output: mode, budgetUsed: false }, groupsOut);
  },
};
