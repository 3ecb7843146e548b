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
