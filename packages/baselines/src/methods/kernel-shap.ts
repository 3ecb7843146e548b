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
import { baselineMasker, budgetOf, finish, numberOption, scoreModeOf, seededDesign } from '../common.js';
import { choleskySpd, logChoose, solveCholesky } from '../linalg.js';

export interface Coalitions {
  /** [n, d] 0/1 */
  masks: Uint8Array;
  weights: Float64Array;
  n: number;
}

/** Growable store of 0/1 coalition rows with a hash index (numeric keys while d ≤ 52, strings beyond). */
class CoalitionStore {
  masks: Uint8Array;
  weights: Float64Array;
  n = 0;
  private readonly d: number;
  private readonly index = new Map<number | string, number>();
  private readonly numeric: boolean;

  constructor(d: number, capacity: number) {
    this.d = d;
    this.numeric = d <= 52;
    this.masks = new Uint8Array(Math.max(1, capacity) * d);
    this.weights = new Float64Array(Math.max(1, capacity));
  }

  key(m: Uint8Array, complement: boolean): number | string {
    const d = this.d;
    if (this.numeric) {
      let k = 0;
      for (let i = d - 1; i >= 0; i--) k = k * 2 + (complement ? 1 - m[i] : m[i]);
      return k;
    }
    let s = '';
    for (let i = 0; i < d; i++) s += complement ? 1 - m[i] : m[i];
    return s;
  }

  /** Row index of the coalition with this key, or −1. */
  find(key: number | string): number {
    return this.index.get(key) ?? -1;
  }

  /** Append m (or its complement) with weight w under `key`. */
  add(m: Uint8Array, complement: boolean, w: number, key: number | string): void {
    const d = this.d;
    if (this.n === this.weights.length) {
      const masks = new Uint8Array(this.masks.length * 2);
      masks.set(this.masks);
      this.masks = masks;
      const weights = new Float64Array(this.weights.length * 2);
      weights.set(this.weights);
      this.weights = weights;
    }
    const o = this.n * d;
    for (let i = 0; i < d; i++) this.masks[o + i] = complement ? 1 - m[i] : m[i];
    this.weights[this.n] = w;
    this.index.set(key, this.n);
    this.n++;
  }
}

/** shap's KernelExplainer coalition design for d features and `nsamples` coalitions (excluding full and empty). */
export function kernelShapCoalitions(d: number, nsamples: number, rng: Rng): Coalitions {
  const store = new CoalitionStore(d, Math.min(Math.max(0, nsamples), 1 << 16) + 2);
  if (d < 2 || nsamples <= 0) return pack(store, d);
  const numSizes = Math.ceil((d - 1) / 2);
  const numPaired = Math.floor((d - 1) / 2);
  const wv = new Float64Array(numSizes);
  for (let i = 1; i <= numSizes; i++) wv[i - 1] = (d - 1) / (i * (d - i)) * (i <= numPaired ? 2 : 1);
  const tot = wv.reduce((a, b) => a + b, 0);
  for (let i = 0; i < numSizes; i++) wv[i] /= tot;
  let numFull = 0;
  let left = nsamples;
  const rem = Float64Array.from(wv);
  const m = new Uint8Array(d);
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
        m.fill(0);
        for (const i of idx) m[i] = 1;
        store.add(m, false, w, store.key(m, false));
        if (s <= numPaired) store.add(m, true, w, store.key(m, true));
      });
    } else break;
  }
  const nFixed = store.n;
  if (numFull !== numSizes && left > 0) {
    const rw = wv.slice(numFull);
    const rs = rw.reduce((a, b) => a + b, 0);
    for (let i = 0; i < rw.length; i++) rw[i] /= rs;
    const cdf = new Float64Array(rw.length);
    let acc = 0;
    for (let i = 0; i < rw.length; i++) cdf[i] = acc += rw[i];
    const maxDraws = 200 * (nsamples + 10);
    // rng.permutation(d) is the identity shuffled by rng.shuffle: the same draws, into one reused buffer
    const perm = new Int32Array(d);
    for (let draw = 0; left > 0 && draw < maxDraws; draw++) {
      const u = rng.next();
      let k = 0;
      while (k < cdf.length - 1 && u > cdf[k]) k++;
      const size = k + numFull + 1;
      for (let i = 0; i < d; i++) perm[i] = i;
      rng.shuffle(perm);
      m.fill(0);
      for (let i = 0; i < size; i++) m[perm[i]] = 1;
      const key = store.key(m, false);
      const at = store.find(key);
      if (at < 0) {
        store.add(m, false, 1, key);
        left--;
      } else store.weights[at] += 1;
      if (left > 0 && size <= numPaired) {
        const ck = store.key(m, true);
        const cat = store.find(ck);
        if (cat < 0) {
          store.add(m, true, 1, ck);
          left--;
        } else store.weights[cat] += 1;
      }
    }
    const weightLeft = wv.slice(numFull).reduce((a, b) => a + b, 0);
    let s = 0;
    for (let i = nFixed; i < store.n; i++) s += store.weights[i];
    if (s > 0) for (let i = nFixed; i < store.n; i++) store.weights[i] *= weightLeft / s;
  }
  return pack(store, d);
}

function pack(store: CoalitionStore, d: number): Coalitions {
  const n = store.n;
  return { masks: store.masks.slice(0, n * d), weights: store.weights.slice(0, n), n };
}

function forEachSubset(d: number, k: number, f: (idx: Int32Array) => void): void {
  const idx = new Int32Array(k);
  for (let i = 0; i < k; i++) idx[i] = i;
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
  // the coalitions' members, CSR-style (rowStart[s] … rowStart[s + 1] in cols)
  const n = co.n;
  const masks = co.masks;
  const weights = co.weights;
  const rowStart = new Int32Array(n + 1);
  let nnz = 0;
  for (let i = 0; i < n * d; i++) if (masks[i]) nnz++;
  const cols = new Int32Array(nnz);
  nnz = 0;
  for (let s = 0; s < n; s++) {
    rowStart[s] = nnz;
    for (let i = 0; i < d; i++) if (masks[s * d + i]) cols[nnz++] = i;
  }
  rowStart[n] = nnz;
  const A = new Float64Array(d * d);
  for (let s = 0; s < n; s++) {
    const w = weights[s];
    const e = rowStart[s + 1];
    for (let a = rowStart[s]; a < e; a++) {
      const row = cols[a] * d;
      for (let b = rowStart[s]; b < e; b++) A[row + cols[b]] += w;
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
    for (let s = 0; s < n; s++) {
      const wy = weights[s] * y[s];
      for (let a = rowStart[s], e = rowStart[s + 1]; a < e; a++) r[cols[a]] += wy;
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
    const nsamples = Math.max(0, Math.min(budget, 2 ** Math.min(d, 40)) - 2);
    // the coalitions, their mask block and the factored solver depend on (d, budget, ridge, seed) only
    const { co, block, solve } = seededDesign('kernel-shap', context, options, `${d}|${nsamples}|${ridge}`, (rng) => {
      const co = kernelShapCoalitions(d, nsamples, rng);
      // one block [per, d] (row 0: full; row 1: empty; then the coalitions), repeated for every example
      const block = new Float32Array((co.n + 2) * d);
      block.fill(1, 0, d);
      for (let i = 0; i < co.n * d; i++) block[2 * d + i] = co.masks[i];
      return { co, block, solve: shapSolver(co, d, ridge) };
    });
    const per = co.n + 2;
    const masks = new Float32Array(B * per * d);
    for (let b = 0; b < B; b++) masks.set(block, b * per * d);
    const { outputs: out, numOutputs: C, targets, scores: f, rows } = await scorePerturbations(runner, inputs, masks, per, options, mode);
    const values = new Float32Array(B * d);
    const y = new Float64Array(co.n);
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
