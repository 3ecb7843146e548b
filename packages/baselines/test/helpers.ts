/** Test doubles: tiny feature spaces, maskers and analytic JS backbones (no dependency on core's implementations). */
import type { Backbone, BackboneOutputs, FeatureSpace, FloatTensor, Inputs, Masker, VjpRequest, VjpResult, AttributionContext } from '@sop/core';
import { takeRows } from '@sop/core';

export function t(data: number[] | Float32Array, shape: number[]): FloatTensor {
  return { data: data instanceof Float32Array ? data : Float32Array.from(data), shape };
}

/** Columns: one feature per column of x [B, d]; expand is the identity. */
export function columnsSpace(d: number): FeatureSpace {
  return {
    kind: 'columns',
    numFeatures: d,
    grid: [d],
    featureNames: () => Array.from({ length: d }, (_, i) => `c${i}`),
    expand: (masks, rows) => t(Float32Array.from(masks), [rows.length, d]),
    aggregate: (a) => t(Float32Array.from(a.data as Float32Array), [a.shape[0], d]),
    featureValues: (inputs) => t(Float32Array.from(inputs.x.data as Float32Array), [inputs.x.shape[0], d, 1]),
  };
}

/** Patches: x [B, C, H, W], p×p patches on a (H/p)×(W/p) grid. */
export function patchesSpace(C: number, H: number, W: number, p: number): FeatureSpace {
  const gh = H / p;
  const gw = W / p;
  const d = gh * gw;
  const fid = (y: number, x: number): number => Math.floor(y / p) * gw + Math.floor(x / p);
  return {
    kind: 'patches',
    numFeatures: d,
    grid: [gh, gw],
    featureNames: () => Array.from({ length: d }, (_, i) => `patch ${Math.floor(i / gw)},${i % gw}`),
    expand(masks, rows) {
      const R = rows.length;
      const out = new Float32Array(R * C * H * W);
      for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) out[((r * C + c) * H + y) * W + x] = masks[r * d + fid(y, x)];
      return t(out, [R, C, H, W]);
    },
    aggregate(a) {
      const B = a.shape[0];
      const out = new Float32Array(B * d);
      for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) out[b * d + fid(y, x)] += (a.data as Float32Array)[((b * C + c) * H + y) * W + x];
      return t(out, [B, d]);
    },
    featureValues(inputs) {
      const B = inputs.x.shape[0];
      const q = C * p * p;
      const out = new Float32Array(B * d * q);
      return t(out, [B, d, q]);
    },
  };
}

/** "Removed" = baseline value (0 for zero, per-element mean for mean): x·m + (1 − m)·base. */
export function blendMasker(name: string, base?: Float32Array): Masker {
  return {
    name,
    apply(inputs: Inputs, masks: Float32Array, rows: ArrayLike<number>, space: FeatureSpace): Inputs {
      const m = space.expand(masks, rows, inputs);
      const x = takeRows(inputs.x as FloatTensor, rows);
      const n = m.data.length / rows.length;
      for (let i = 0; i < x.data.length; i++) x.data[i] = x.data[i] * m.data[i] + (1 - m.data[i]) * (base ? base[i % n] : 0);
      const out: Record<string, FloatTensor> = { x };
      for (const k of Object.keys(inputs)) if (k !== 'x') out[k] = takeRows(inputs[k] as FloatTensor, rows);
      return out as Inputs;
    },
  };
}
export const zeroMasker = (): Masker => blendMasker('zero');

/** Per-row function with analytic gradient: f(x) → C outputs; vjp(x, cot) → dx. */
export interface RowModel {
  n: number;
  C: number;
  f(x: Float64Array): number[];
  vjp(x: Float64Array, cot: ArrayLike<number>): number[];
  /** Extra outputs per row (name → [values, shape without batch]), with their vjp. */
  extra?: Record<string, { f(x: Float64Array): number[]; shape: number[]; grad(x: Float64Array, cot: ArrayLike<number>): number[] }>;
}

export interface SpyBackbone extends Backbone {
  forwardCalls: number;
  forwardRows: number;
  vjpCalls: number;
  vjpRows: number;
}

/** A backbone from a RowModel; counts calls. `withVjp: false` gives a forward-only backbone. */
export function rowBackbone(model: RowModel, opts: { withVjp?: boolean; name?: string; costPerRow?: number } = {}): SpyBackbone {
  const withVjp = opts.withVjp !== false;
  const rowsOf = (inputs: Inputs): Float64Array[] => {
    const x = inputs.x.data as Float32Array;
    const B = inputs.x.shape[0];
    return Array.from({ length: B }, (_, b) => Float64Array.from(x.subarray(b * model.n, (b + 1) * model.n)));
  };
  const burn = (k: number): void => {
    if (!opts.costPerRow) return;
    let s = 0;
    for (let i = 0; i < k * opts.costPerRow; i++) s += Math.sqrt(i);
    if (s < 0) throw new Error('never');
  };
  const bb: SpyBackbone = {
    name: opts.name ?? 'row-model',
    info: { outputDim: model.C, extraOutputs: Object.keys(model.extra ?? {}) },
    capabilities: { vjp: withVjp, hidden: false, embeddings: false },
    forwardCalls: 0,
    forwardRows: 0,
    vjpCalls: 0,
    vjpRows: 0,
    async forward(inputs, options): Promise<BackboneOutputs> {
      const rows = rowsOf(inputs);
      bb.forwardCalls++;
      bb.forwardRows += rows.length;
      burn(rows.length);
      const out: BackboneOutputs = { output: t(rows.flatMap((r) => model.f(r)), [rows.length, model.C]) };
      for (const name of options?.outputs ?? []) {
        const e = model.extra?.[name];
        if (e) out[name] = t(rows.flatMap((r) => e.f(r)), [rows.length, ...e.shape]);
      }
      return out;
    },
  };
  if (withVjp) {
    bb.vjp = async (inputs: Inputs, req: VjpRequest): Promise<VjpResult> => {
      const rows = rowsOf(inputs);
      bb.vjpCalls++;
      bb.vjpRows += rows.length;
      burn(2 * rows.length);
      const cot = req.cotangents.output!.data;
      const grads: Record<string, FloatTensor> = {};
      for (const w of req.wrt ?? ['x']) {
        if (w === 'x') grads.x = t(rows.flatMap((r, i) => model.vjp(r, cot.subarray(i * model.C, (i + 1) * model.C))), inputs.x.shape);
        else {
          const e = model.extra![w];
          grads[w] = t(rows.flatMap((r, i) => e.grad(r, cot.subarray(i * model.C, (i + 1) * model.C))), [rows.length, ...e.shape]);
        }
      }
      return { outputs: { output: t(rows.flatMap((r) => model.f(r)), [rows.length, model.C]) }, grads };
    };
  }
  return bb;
}

/** Linear model out_c = Σ_i W[c][i] x_i + b_c. */
export function linearModel(W: number[][], b: number[] = W.map(() => 0)): RowModel {
  const n = W[0].length;
  return {
    n,
    C: W.length,
    f: (x) => W.map((w, c) => w.reduce((s, wi, i) => s + wi * x[i], b[c])),
    vjp: (_x, cot) => Array.from({ length: n }, (_, i) => W.reduce((s, w, c) => s + cot[c] * w[i], 0)),
  };
}

/** A small 2-layer tanh MLP with fixed pseudo-random weights, analytic vjp. */
export function mlpModel(n: number, h: number, C: number, seed = 1): RowModel {
  let s = seed;
  const rnd = (): number => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  };
  const W1 = Array.from({ length: h }, () => Array.from({ length: n }, () => rnd() * 1.5));
  const b1 = Array.from({ length: h }, () => rnd() * 0.5);
  const W2 = Array.from({ length: C }, () => Array.from({ length: h }, () => rnd() * 2));
  const hidden = (x: Float64Array): number[] => W1.map((w, j) => Math.tanh(w.reduce((a, wi, i) => a + wi * x[i], b1[j])));
  return {
    n,
    C,
    f: (x) => {
      const z = hidden(x);
      return W2.map((w) => w.reduce((a, wj, j) => a + wj * z[j], 0));
    },
    vjp: (x, cot) => {
      const z = hidden(x);
      const dz = z.map((zj, j) => (1 - zj * zj) * W2.reduce((a, w, c) => a + cot[c] * w[j], 0));
      return Array.from({ length: n }, (_, i) => W1.reduce((a, w, j) => a + dz[j] * w[i], 0));
    },
  };
}

/** A scalar model from a function and its gradient (C = 1). */
export function scalarModel(n: number, f: (x: Float64Array) => number, grad: (x: Float64Array) => number[]): RowModel {
  return { n, C: 1, f: (x) => [f(x)], vjp: (x, cot) => grad(x).map((g) => g * cot[0]) };
}

export function ctx(backbone: Backbone, space: FeatureSpace, masker: Masker = zeroMasker()): AttributionContext {
  return { backbone, space, masker };
}

/** Exact Shapley values of g over d players by enumeration (g takes a 0/1 mask). */
export function exactShapley(d: number, g: (mask: number[]) => number): number[] {
  const vals = new Float64Array(1 << d);
  for (let s = 0; s < 1 << d; s++) vals[s] = g(Array.from({ length: d }, (_, i) => (s >> i) & 1));
  const fact = [1];
  for (let i = 1; i <= d; i++) fact[i] = fact[i - 1] * i;
  const phi = new Array<number>(d).fill(0);
  for (let s = 0; s < 1 << d; s++) {
    let k = 0;
    for (let i = 0; i < d; i++) k += (s >> i) & 1;
    for (let i = 0; i < d; i++) {
      if ((s >> i) & 1) continue;
      const w = (fact[k] * fact[d - k - 1]) / fact[d];
      phi[i] += w * (vals[s | (1 << i)] - vals[s]);
    }
  }
  return phi;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
