/** Small dense solvers (float64) for the regression-based attributors. */

/** Solve A x = b for symmetric positive (semi)definite A [n, n] by Cholesky, adding `jitter`·I until it factors. */
export function solveSpd(A: Float64Array, b: Float64Array, n: number, jitter = 0): Float64Array {
  const L = choleskySpd(A, n, jitter);
  return L ? solveCholesky(L, b, n) : new Float64Array(n);
}

/**
 * Cholesky factor L (lower, [n, n] row-major) of A + eps·I, eps = `jitter` first, then grown until A factors (12
 * tries); null when it never does. Factor once and {@link solveCholesky} for every right-hand side of the same A.
 */
export function choleskySpd(A: Float64Array, n: number, jitter = 0): Float64Array | null {
  let eps = jitter;
  let maxDiag = 0;
  for (let i = 0; i < n; i++) maxDiag = Math.max(maxDiag, Math.abs(A[i * n + i]));
  for (let attempt = 0; attempt < 12; attempt++) {
    const L = new Float64Array(n * n);
    let ok = true;
    for (let i = 0; i < n && ok; i++) {
      for (let j = 0; j <= i; j++) {
        let s = A[i * n + j] + (i === j ? eps : 0);
        for (let k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
        if (i === j) {
          if (!(s > 0)) {
            ok = false;
            break;
          }
          L[i * n + i] = Math.sqrt(s);
        } else L[i * n + j] = s / L[j * n + j];
      }
    }
    if (ok) return L;
    eps = eps === 0 ? Math.max(1e-12, maxDiag * 1e-10) : eps * 100;
  }
  return null;
}

/** Solve L Lᵀ x = b with the factor from {@link choleskySpd}. */
export function solveCholesky(L: Float64Array, b: ArrayLike<number>, n: number): Float64Array {
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= L[i * n + k] * y[k];
    y[i] = s / L[i * n + i];
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < n; k++) s -= L[k * n + i] * x[k];
    x[i] = s / L[i * n + i];
  }
  return x;
}

/**
 * Weighted ridge regression with an unpenalised intercept (sklearn `Ridge(alpha).fit(X, y, sample_weight=w)`):
 * minimises Σ w_i (y_i − b − X_i·β)² + α‖β‖². X is [n, p] row-major. Returns {coef, intercept}.
 */
export function weightedRidge(X: Float64Array, y: Float64Array, w: Float64Array, n: number, p: number, alpha: number): { coef: Float64Array; intercept: number } {
  let sw = 0;
  const xm = new Float64Array(p);
  let ym = 0;
  for (let i = 0; i < n; i++) {
    sw += w[i];
    ym += w[i] * y[i];
    for (let j = 0; j < p; j++) xm[j] += w[i] * X[i * p + j];
  }
  if (!(sw > 0)) return { coef: new Float64Array(p), intercept: 0 };
  ym /= sw;
  for (let j = 0; j < p; j++) xm[j] /= sw;
  const A = new Float64Array(p * p);
  const r = new Float64Array(p);
  const xc = new Float64Array(p);
  for (let i = 0; i < n; i++) {
    const wi = w[i];
    if (wi === 0) continue;
    for (let j = 0; j < p; j++) xc[j] = X[i * p + j] - xm[j];
    const yc = y[i] - ym;
    for (let j = 0; j < p; j++) {
      const a = wi * xc[j];
      if (a === 0) continue;
      r[j] += a * yc;
      for (let k = 0; k <= j; k++) A[j * p + k] += a * xc[k];
    }
  }
  for (let j = 0; j < p; j++) for (let k = 0; k < j; k++) A[k * p + j] = A[j * p + k];
  for (let j = 0; j < p; j++) A[j * p + j] += alpha;
  const coef = solveSpd(A, r, p);
  let intercept = ym;
  for (let j = 0; j < p; j++) intercept -= coef[j] * xm[j];
  return { coef, intercept };
}

/**
 * {@link weightedRidge} without allocations per fit, split so that one design (X, w, α) serves many targets y: `prepare`
 * builds the centred normal matrix and its Cholesky factor, `solve` then costs Σ_i nnz_i multiply-adds and two
 * triangular solves per y; `fit` does both. Rows of X are read from a Float32Array/Float64Array at an offset (LIME's
 * mask rows, used as they are) and zeros are skipped (the nonzeros are kept, CSR-style, for `solve`), so a 0/1 design
 * costs Σ_i nnz_i² / 2 multiply-adds for the weighted cross products, accumulated uncentred and then centred as
 * S_xx − s_x s_xᵀ / Σw (for 0/1 designs this loses nothing measurable), plus one p×p Cholesky. Same minimiser as
 * {@link weightedRidge}: Σ w_i (y_i − b − X_i·β)² + α‖β‖², intercept unpenalised; a matrix that does not factor
 * (α = 0 and a rank-deficient design) falls back to {@link choleskySpd}'s growing jitter, like {@link weightedRidge}.
 */
export class RidgeWorkspace {
  readonly p: number;
  private readonly A: Float64Array;
  private readonly Lbuf: Float64Array;
  private L: Float64Array | null = null;
  private readonly r: Float64Array;
  private readonly sx: Float64Array;
  private readonly z: Float64Array;
  private readonly dinv: Float64Array;
  /** The prepared design: weights, and per row its nonzeros (rowStart, cols, vals). */
  private w = new Float64Array(0);
  private rowStart = new Int32Array(1);
  private cols = new Int32Array(0);
  private vals = new Float64Array(0);
  private n = 0;
  private sw = 0;
  /** Intercept of the last {@link solve} / {@link fit}. */
  intercept = 0;

  constructor(p: number) {
    this.p = p;
    this.A = new Float64Array(p * p);
    this.Lbuf = new Float64Array(p * p);
    this.r = new Float64Array(p);
    this.sx = new Float64Array(p);
    this.z = new Float64Array(p);
    this.dinv = new Float64Array(p);
  }

  /**
   * Fit n rows: X row i = X[xOff + i·p … + p), target y[yOff + i], weight w[wOff + i]. Writes the p coefficients to
   * out[outOff …] (zeros when Σw ≤ 0) and sets {@link intercept}.
   */
  fit(X: Float32Array | Float64Array, xOff: number, n: number, y: ArrayLike<number>, yOff: number, w: ArrayLike<number>, wOff: number, alpha: number, out: Float32Array | Float64Array, outOff: number): void {
    this.prepare(X, xOff, n, w, wOff, alpha);
    this.solve(y, yOff, out, outOff);
  }

  /** Factor the design: n rows of X from xOff, weights w[wOff …], ridge α. */
  prepare(X: Float32Array | Float64Array, xOff: number, n: number, w: ArrayLike<number>, wOff: number, alpha: number): void {
    const p = this.p;
    const A = this.A;
    const sx = this.sx;
    if (this.w.length < n) {
      this.w = new Float64Array(n);
      this.rowStart = new Int32Array(n + 1);
      this.cols = new Int32Array(n * p);
      this.vals = new Float64Array(n * p);
    }
    const ws = this.w;
    const rowStart = this.rowStart;
    const cols = this.cols;
    const vals = this.vals;
    this.n = n;
    A.fill(0);
    sx.fill(0);
    let sw = 0;
    let m = 0;
    for (let i = 0; i < n; i++) {
      const wi = w[wOff + i];
      ws[i] = wi;
      rowStart[i] = m;
      if (wi === 0) continue;
      sw += wi;
      const o = xOff + i * p;
      const m0 = m;
      for (let j = 0; j < p; j++) {
        const v = X[o + j];
        if (v !== 0) {
          cols[m] = j;
          vals[m] = v;
          m++;
        }
      }
      for (let a = m0; a < m; a++) {
        const j = cols[a];
        const wv = wi * vals[a];
        sx[j] += wv;
        const row = j * p;
        for (let c = m0; c <= a; c++) A[row + cols[c]] += wv * vals[c];
      }
    }
    rowStart[n] = m;
    this.sw = sw;
    if (!(sw > 0)) {
      this.L = null;
      return;
    }
    const inv = 1 / sw;
    // centre (lower triangle only: the factorisations read nothing else) and add the ridge
    for (let j = 0; j < p; j++) {
      const sj = sx[j] * inv;
      const row = j * p;
      for (let k = 0; k <= j; k++) A[row + k] -= sj * sx[k];
      A[row + j] += alpha;
    }
    let L = this.factor();
    if (!L) {
      L = choleskySpd(A, p);
      if (L) for (let i = 0; i < p; i++) this.dinv[i] = 1 / L[i * p + i];
    }
    this.L = L;
  }

  /** Coefficients for targets y[yOff + i] (i < n of the prepared design) into out[outOff …]; sets {@link intercept}. */
  solve(y: ArrayLike<number>, yOff: number, out: Float32Array | Float64Array, outOff: number): void {
    const p = this.p;
    const n = this.n;
    const sw = this.sw;
    if (!(sw > 0)) {
      for (let j = 0; j < p; j++) out[outOff + j] = 0;
      this.intercept = 0;
      return;
    }
    const ws = this.w;
    const rowStart = this.rowStart;
    const cols = this.cols;
    const vals = this.vals;
    const r = this.r;
    const sx = this.sx;
    r.fill(0);
    let sy = 0;
    for (let i = 0; i < n; i++) {
      const wy = ws[i] * y[yOff + i];
      sy += wy;
      for (let a = rowStart[i], e = rowStart[i + 1]; a < e; a++) r[cols[a]] += wy * vals[a];
    }
    const ym = sy / sw;
    for (let j = 0; j < p; j++) r[j] -= sx[j] * ym;
    const z = this.z;
    const L = this.L;
    const dinv = this.dinv;
    if (!L) z.fill(0);
    else {
      // forward then back substitution into z
      for (let i = 0; i < p; i++) {
        let s = r[i];
        const row = i * p;
        for (let k = 0; k < i; k++) s -= L[row + k] * z[k];
        z[i] = s * dinv[i];
      }
      for (let i = p - 1; i >= 0; i--) {
        let s = z[i];
        for (let k = i + 1; k < p; k++) s -= L[k * p + i] * z[k];
        z[i] = s * dinv[i];
      }
    }
    let b = ym;
    const inv = 1 / sw;
    for (let j = 0; j < p; j++) {
      out[outOff + j] = z[j];
      b -= z[j] * sx[j] * inv;
    }
    this.intercept = b;
  }

  /** Cholesky factor of A (lower triangle) into Lbuf and 1/diag(L) into dinv (no jitter); null when A is not positive definite. */
  private factor(): Float64Array | null {
    const p = this.p;
    const A = this.A;
    const L = this.Lbuf;
    const dinv = this.dinv;
    for (let i = 0; i < p; i++) {
      const ri = i * p;
      for (let j = 0; j < i; j++) {
        const rj = j * p;
        let s = A[ri + j];
        for (let k = 0; k < j; k++) s -= L[ri + k] * L[rj + k];
        L[ri + j] = s * dinv[j];
      }
      let s = A[ri + i];
      for (let k = 0; k < i; k++) {
        const v = L[ri + k];
        s -= v * v;
      }
      if (!(s > 0)) return null;
      const dg = Math.sqrt(s);
      L[ri + i] = dg;
      dinv[i] = 1 / dg;
    }
    return L;
  }
}

/** log of n choose k. */
export function logChoose(n: number, k: number): number {
  return logFactorial(n) - logFactorial(k) - logFactorial(n - k);
}

const LF: number[] = [0];
export function logFactorial(n: number): number {
  for (let i = LF.length; i <= n; i++) LF[i] = LF[i - 1] + Math.log(i);
  return LF[n];
}

/** Gauss-Legendre nodes on [0, 1] and weights (summing to 1), n points. */
export function gaussLegendre01(n: number): { nodes: Float64Array; weights: Float64Array } {
  const nodes = new Float64Array(n);
  const weights = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let x = Math.cos((Math.PI * (i + 0.75)) / (n + 0.5));
    let dp = 0;
    for (let it = 0; it < 100; it++) {
      let p0 = 1;
      let p1 = x;
      for (let k = 2; k <= n; k++) {
        const p2 = ((2 * k - 1) * x * p1 - (k - 1) * p0) / k;
        p0 = p1;
        p1 = p2;
      }
      if (n === 1) {
        p1 = x;
        p0 = 1;
      }
      dp = (n * (x * p1 - p0)) / (x * x - 1);
      const dx = p1 / dp;
      x -= dx;
      if (Math.abs(dx) < 1e-15) break;
    }
    nodes[n - 1 - i] = (x + 1) / 2;
    weights[n - 1 - i] = 1 / ((1 - x * x) * dp * dp);
  }
  return { nodes, weights };
}
