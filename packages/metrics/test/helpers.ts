import type { Backbone, Explanation, ExplainOptions, FaithfulExplainer, FeatureSpace, FloatTensor, Inputs, Masker } from '@sop/core';

/** Columns feature space over x [B, d]: features are the columns themselves. */
export function columnsSpace(d: number): FeatureSpace {
  return {
    kind: 'columns',
    numFeatures: d,
    grid: [d],
    featureNames: () => Array.from({ length: d }, (_, j) => `f${j}`),
    expand: (masks: Float32Array, rows: ArrayLike<number>): FloatTensor => ({ data: Float32Array.from(masks), shape: [rows.length, d] }),
    aggregate: (a: FloatTensor) => a,
    featureValues: (inputs: Inputs) => ({ data: Float32Array.from(inputs.x.data as Float32Array), shape: [inputs.x.shape[0], d, 1] }),
  };
}

/** Zero masker: removed features become 0. */
export const zeroMasker: Masker = {
  name: 'zero',
  apply(inputs: Inputs, masks: Float32Array, rows: ArrayLike<number>, space: FeatureSpace): Inputs {
    const d = space.numFeatures;
    const x = inputs.x.data as Float32Array;
    const out = new Float32Array(rows.length * d);
    for (let r = 0; r < rows.length; r++) for (let j = 0; j < d; j++) out[r * d + j] = x[rows[r] * d + j] * masks[r * d + j];
    return { x: { data: out, shape: [rows.length, d] } };
  },
};

/** Linear backbone: logits = x W, W [d, C] row-major. Counts forward rows. */
export function linearBackbone(w: number[][]): Backbone & { rows: number } {
  const d = w.length;
  const c = w[0].length;
  const bb = {
    name: 'linear',
    rows: 0,
    info: { outputDim: c },
    capabilities: { vjp: false, hidden: false, embeddings: false },
    async forward(inputs: Inputs) {
      const x = inputs.x.data as Float32Array;
      const n = inputs.x.shape[0];
      bb.rows += n;
      const out = new Float32Array(n * c);
      for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) for (let j = 0; j < d; j++) out[i * c + k] += x[i * d + j] * w[j][k];
      return { output: { data: out, shape: [n, c] } };
    },
  };
  return bb;
}

export function argmaxRow(v: ArrayLike<number>, i: number, c: number): number {
  let b = 0;
  for (let k = 1; k < c; k++) if (v[i * c + k] > v[i * c + b]) b = k;
  return b;
}

/** Top ⌊d·keep⌋ features by score (ties by index), as a 0/1 mask row. */
export function topMask(scores: number[], keep: number, bottom = false): number[] {
  const d = scores.length;
  const idx = scores.map((_, j) => j).sort((a, b) => (bottom ? scores[a] - scores[b] : scores[b] - scores[a]) || a - b);
  const m = new Array(d).fill(0);
  for (let q = 0; q < Math.floor(d * keep + 1e-9); q++) m[idx[q]] = 1;
  return m;
}

/**
 * A -F style explainer over a linear backbone: attribution = sign · x_j W[j, ŷ]; outputs = backbone on the top-keep
 * features; g_c = Σ_j x_j W[j, c] (= the logits when sign = 1).
 */
export function linearExplainer(name: string, backbone: Backbone, w: number[][], sign = 1, faithfulByConstruction = false): FaithfulExplainer & { calls: ExplainOptions[] } {
  const d = w.length;
  const c = w[0].length;
  const ex = {
    name,
    faithfulByConstruction,
    calls: [] as ExplainOptions[],
    async explain(inputs: Inputs, o: ExplainOptions): Promise<Explanation> {
      ex.calls.push(o);
      const n = inputs.x.shape[0];
      const x = inputs.x.data as Float32Array;
      const logits = (await backbone.forward(inputs)).output.data;
      const attributions = new Float32Array(n * d);
      const featureMasks = new Float32Array(n * d);
      const targets = new Int32Array(n);
      const all = new Float32Array(n * c);
      for (let i = 0; i < n; i++) {
        const t = typeof o.target === 'number' ? o.target : argmaxRow(logits, i, c);
        targets[i] = t;
        const s: number[] = [];
        for (let j = 0; j < d; j++) s.push(sign * x[i * d + j] * w[j][t]);
        attributions.set(s, i * d);
        featureMasks.set(topMask(s, o.keep, o.deletion), i * d);
        for (let k = 0; k < c; k++) for (let j = 0; j < d; j++) all[i * c + k] += sign * x[i * d + j] * w[j][k];
      }
      const masked = new Float32Array(n * d);
      for (let q = 0; q < n * d; q++) masked[q] = x[q] * featureMasks[q];
      const outputs = (await backbone.forward({ x: { data: masked, shape: [n, d] } })).output.data;
      const groups = {
        count: 2,
        masks: new Float32Array(n * 2 * d),
        weights: new Float32Array(n * 2),
      };
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < d; j++) groups.masks[(i * 2 + (j < d / 2 ? 0 : 1)) * d + j] = 1;
        groups.weights[i * 2] = 0.7;
        groups.weights[i * 2 + 1] = 0.3;
      }
      return {
        outputs,
        numOutputs: c,
        attributions,
        numFeatures: d,
        targets,
        featureMasks,
        allClassAttributions: o.allClasses ? (faithfulByConstruction ? outputs : all) : undefined,
        groups: faithfulByConstruction ? groups : undefined,
        meta: { method: name, evaluations: 2 * n },
      };
    },
  };
  return ex;
}
