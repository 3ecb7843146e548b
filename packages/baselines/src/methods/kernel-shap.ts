/**
 * Kernel SHAP (Lundberg & Lee 2017), following shap's KernelExplainer sampling: subset sizes are enumerated completely
 * (with exact Shapley-kernel weights) while the budget allows, smallest/largest first, and the rest are sampled from
 * the kernel's size distribution with paired (complementary, antithetic) coalitions, repeated draws adding weight.
 * The full and empty coalitions are equality constraints (Σφ = f(x) − f(∅)), solved as a constrained weighted least
 * squares (tiny ridge `ridge`, relative, so that budgets below d give the minimum-norm solution).
 * budget = forwarded rows per explanation, including f(x) and f(∅). budget ≥ 2^d enumerates all coalitions: the
 * result is then the exact Shapley value (up to the 1e-9 ridge). Coalitions are shared by the batch's examples.
 */
import type { AttributeOptions, Attribution, AttributionContext, Attributor, Inputs, Rng } from '@sop/core';
import { BatchRunner, scorePerturbations } from '../batching.js';
import { baselineMasker, budgetOf, finish, numberOption, rngOf, scoreModeOf } from '../common.js';
import { choleskySpd, logChoose, solveCholesky } from '../linalg.js';

export interface Coalitions {
  /** [n, d] 0/1 */
  masks: Uint8Array;
  weights: Float64Array;
  n: number;
}

/** shap's KernelExplainer coalition design for d features and `nsamples` coalitions (excluding full and empty). */
export function kernelShapCoalitions(d: number, nsamples: number, rng: Rng): Coalitions {
  const masks: number[][] = [];
  const weights: number[] = [];
  const index = new Map<string, number>();
  const add = (m: number[], w: number): void => {
    masks.push(m);
    weights.push(w);
    index.set(m.join(''), masks.length - 1);
  };
  if (d < 2 || nsamples <= 0) return pack(masks, weights, d);
  const numSizes = Math.ceil((d - 1) / 2);
  const numPaired = Math.floor((d - 1) / 2);
  const wv = new Float64Array(numSizes);
  for (let i = 1; i <= numSizes; i++) wv[i - 1] = (d - 1) / (i * (d - i)) * (i <= numPaired ? 2 : 1);
  const tot = wv.reduce((a, b) => a + b, 0);
  for (let i = 0; i < numSizes; i++) wv[i] /= tot;
  let numFull = 0;
  let left = nsamples;
  const rem = Float64Array.from(wv);
  for (let s = 1; s <= numSizes; s++) {
    let nsub = Math.exp(logChoose(d, s));
    if (s <= numPaired) nsub *= 2;
    if ((left * rem[s - 1]) / nsub >= 1 - 1e-8) {
      numFull++;
      left -= Math.round(nsub);
      if (rem[s - 1] < 1) {
        const f = 1 - rem[s - 1];
        for (let i = 0; i < numSizes; i++) rem[i] /= f;
      }
      let w = wv[s - 1] / Math.exp(logChoose(d, s));
      if (s <= numPaired) w /= 2;
      forEachSubset(d, s, (idx) => {
        const m = new Array<number>(d).fill(0);
        for (const i of idx) m[i] = 1;
        add(m, w);
        if (s <= numPaired) add(m.map((v) => 1 - v), w);
      });
    } else break;
  }
  const nFixed = masks.length;
  if (numFull !== numSizes && left > 0) {
    const rw = wv.slice(numFull);
    const rs = rw.reduce((a, b) => a + b, 0);
    for (let i = 0; i < rw.length; i++) rw[i] /= rs;
    const cdf = new Float64Array(rw.length);
    let acc = 0;
    for (let i = 0; i < rw.length; i++) cdf[i] = acc += rw[i];
    const maxDraws = 200 * (nsamples + 10);
    for (let draw = 0; left > 0 && draw < maxDraws; draw++) {
      const u = rng.next();
      let k = 0;
      while (k < cdf.length - 1 && u > cdf[k]) k++;
      const size = k + numFull + 1;
      const perm = rng.permutation(d);
      const m = new Array<number>(d).fill(0);
      for (let i = 0; i < size; i++) m[perm[i]] = 1;
      const key = m.join('');
      const at = index.get(key);
      if (at === undefined) {
        add(m, 1);
        left--;
      } else weights[at] += 1;
      if (left > 0 && size <= numPaired) {
        const c = m.map((v) => 1 - v);
        const ck = c.join('');
        const cat = index.get(ck);
        if (cat === undefined) {
          add(c, 1);
          left--;
        } else weights[cat] += 1;
      }
    }
    const weightLeft = wv.slice(numFull).reduce((a, b) => a + b, 0);
    let s = 0;
    for (let i = nFixed; i < weights.length; i++) s += weights[i];
    if (s > 0) for (let i = nFixed; i < weights.length; i++) weights[i] *= weightLeft / s;
  }
  return pack(masks, weights, d);
}

function pack(masks: number[][], weights: number[], d: number): Coalitions {
  const n = masks.length;
  const out = new Uint8Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) out[i * d + j] = masks[i][j];
  return { masks: out, weights: Float64Array.from(weights), n };
}

function forEachSubset(d: number, k: number, f: (idx: number[]) => void): void {
  const idx = Array.from({ length: k }, (_, i) => i);
  for (;;) {
    f(idx);
    let i = k - 1;
    while (i >= 0 && idx[i] === d - k + i) i--;
    if (i < 0) return;
    idx[i]++;
    for (let j = i + 1; j < k; j++) idx[j] = idx[j - 1] + 1;
  }
}

/**
 * min Σ w_j (y_j − z_j·φ)² + λ‖φ‖² subject to Σφ = delta (y already has f(∅) subtracted). Returns φ [d].
 */
export function constrainedShapSolve(co: Coalitions, y: ArrayLike<number>, delta: number, d: number, ridge: number): Float64Array {
  return shapSolver(co, d, ridge)(y, delta);
}

/**
 * {@link constrainedShapSolve} for many y over the same coalitions: the normal matrix, its Cholesky factor and the
 * constraint direction A⁻¹·1 depend on the coalitions only, so they are built once; each call then costs Σ_j z_j·y_j
 * and two triangular solves. Same values as solving each y from scratch.
 */
export function shapSolver(co: Coalitions, d: number, ridge: number): (y: ArrayLike<number>, delta: number) => Float64Array {
  if (d === 1) return (_y, delta) => Float64Array.of(delta);
  const A = new Float64Array(d * d);
  for (let s = 0; s < co.n; s++) {
    const w = co.weights[s];
    for (let i = 0; i < d; i++) {
      if (!co.masks[s * d + i]) continue;
      for (let j = 0; j < d; j++) if (co.masks[s * d + j]) A[i * d + j] += w;
    }
  }
  let tr = 0;
  for (let i = 0; i < d; i++) tr += A[i * d + i];
  const lam = Math.max(ridge * (tr / d), 1e-12);
  for (let i = 0; i < d; i++) A[i * d + i] += lam;
  const L = choleskySpd(A, d);
  const ones = new Float64Array(d).fill(1);
  const v = L ? solveCholesky(L, ones, d) : new Float64Array(d);
  let sv = 0;
  for (let i = 0; i < d; i++) sv += v[i];
  const r = new Float64Array(d);
  return (y, delta) => {
    r.fill(0);
    for (let s = 0; s < co.n; s++) {
      const w = co.weights[s];
      for (let i = 0; i < d; i++) if (co.masks[s * d + i]) r[i] += w * y[s];
    }
    const u = L ? solveCholesky(L, r, d) : new Float64Array(d);
    let su = 0;
    for (let i = 0; i < d; i++) su += u[i];
    const mu = (su - delta) / sv;
    const phi = new Float64Array(d);
    for (let i = 0; i < d; i++) phi[i] = u[i] - mu * v[i];
    return phi;
  };
}

export const kernelShap: Attributor = {
  name: 'kernel-shap',
  access: 'black-box',
  async attribute(inputs: Inputs, context: AttributionContext, options: AttributeOptions = {}): Promise<Attribution> {
    const masker = baselineMasker(context, options);
    const runner = new BatchRunner(context, inputs, options, masker);
    const d = context.space.numFeatures;
    const B = inputs.x.shape[0];
    const budget = budgetOf(options);
    const mode = scoreModeOf(options, 'logit');
    const ridge = numberOption(options, 'ridge', 1e-9, (v) => v >= 0, 'a non-negative number');
    const co = kernelShapCoalitions(d, Math.max(0, Math.min(budget, 2 ** Math.min(d, 40)) - 2), rngOf(context, options));
    const per = co.n + 2;
    const masks = new Float32Array(B * per * d);
    for (let b = 0; b < B; b++) {
      const base = b * per * d;
      masks.fill(1, base, base + d); // row 0: full; row 1: empty
      for (let s = 0; s < co.n; s++) for (let j = 0; j < d; j++) masks[base + (s + 2) * d + j] = co.masks[s * d + j];
    }
    const { outputs: out, numOutputs: C, targets, scores: f, rows } = await scorePerturbations(runner, inputs, masks, per, options, mode);
    const values = new Float32Array(B * d);
    const y = new Float64Array(co.n);
    const solve = shapSolver(co, d, ridge);
    for (let b = 0; b < B; b++) {
      const fx = f[b * per];
      const f0 = f[b * per + 1];
      for (let s = 0; s < co.n; s++) y[s] = f[b * per + 2 + s] - f0;
      const phi = solve(y, fx - f0);
      for (let j = 0; j < d; j++) values[b * d + j] = phi[j];
    }
    return finish('kernel-shap', values, d, targets, runner, options, { coalitions: co.n, output: mode, exact: co.n === 2 ** d - 2 });
  },
};
