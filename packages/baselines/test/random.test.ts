import { describe, expect, it } from 'vitest';
import { Rng } from '@sop/core';
import { BulkRng } from '../src/random.js';
import { baselineKernels, setBaselineKernelsEnabled } from '../src/kernels/index.js';

/** Standard normal CDF (Abramowitz–Stegun 7.1.26 erf, |error| < 1.5e-7). */
function phi(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-z * z);
  return x >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

describe('BulkRng', () => {
  it('is deterministic by the seeding Rng and fills at offsets', () => {
    const a = new Float64Array(1000);
    const b = new Float64Array(1010);
    new BulkRng(new Rng(3)).fillNormal(a, 0, 1000);
    new BulkRng(new Rng(3)).fillNormal(b, 10, 1000);
    expect(Array.from(b.subarray(10))).toEqual(Array.from(a));
    const c = new Float64Array(1000);
    new BulkRng(new Rng(4)).fillNormal(c, 0, 1000);
    expect(Array.from(c)).not.toEqual(Array.from(a));
  });

  it('normal draws: moments, tails and the CDF match N(0, 1) (Kolmogorov–Smirnov)', () => {
    const n = 400_000;
    const z = new Float64Array(n);
    const g = new BulkRng(new Rng(12345));
    // several fills, so that state hand-over between calls is exercised
    for (let s = 0; s < n; s += 50_000) g.fillNormal(z, s, 50_000);
    let m1 = 0;
    let m2 = 0;
    let m4 = 0;
    let tail3 = 0;
    let tailR = 0;
    for (const v of z) {
      m1 += v;
      m2 += v * v;
      m4 += v ** 4;
      if (Math.abs(v) > 3) tail3++;
      if (Math.abs(v) > 3.442619855899) tailR++;
    }
    m1 /= n;
    m2 /= n;
    m4 /= n;
    expect(Math.abs(m1)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(m2 - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
    expect(Math.abs(m4 - 3)).toBeLessThan(5 * Math.sqrt(96 / n));
    // P(|Z| > 3) = 0.0026998, P(|Z| > R) = 0.000576 (the ziggurat's tail branch)
    expect(Math.abs(tail3 / n - 0.0026998)).toBeLessThan(5 * Math.sqrt(0.0027 / n));
    expect(Math.abs(tailR / n - 0.000576)).toBeLessThan(5 * Math.sqrt(0.000576 / n));
    const s = Float64Array.from(z).sort();
    let ks = 0;
    for (let i = 0; i < n; i++) {
      const f = phi(s[i]);
      ks = Math.max(ks, Math.abs(f - i / n), Math.abs(f - (i + 1) / n));
    }
    // KS critical value at α = 0.001 is 1.95 / √n
    expect(ks).toBeLessThan(1.95 / Math.sqrt(n));
  });

  it('fillNormalAffine and mulUniform use the same draws as fillNormal and fillUniform', () => {
    const n = 5000;
    const base = Float32Array.from({ length: n + 3 }, (_, i) => Math.sin(i));
    const z = new Float64Array(n);
    const u = new Float64Array(n);
    const a = new BulkRng(new Rng(8));
    a.fillNormal(z, 0, n);
    a.fillUniform(u, 0, n, 0.5, 1.5);
    const out = new Float64Array(n + 2);
    const b = new BulkRng(new Rng(8));
    b.fillNormalAffine(out, 2, n, base, 3, 0.25);
    b.mulUniform(out, 2, n, 0.5, 1.5);
    for (let i = 0; i < n; i++) expect(out[2 + i]).toBeCloseTo((base[3 + i] + 0.25 * z[i]) * u[i], 12);
  });

  it('uniform draws lie in [lo, hi) with the right mean and variance', () => {
    const n = 200_000;
    const u = new Float32Array(n);
    new BulkRng(new Rng(9)).fillUniform(u, 0, n, 0.5, 1.5);
    let m = 0;
    let v = 0;
    for (const x of u) {
      expect(x >= 0.5 && x <= 1.5).toBe(true);
      m += x;
    }
    m /= n;
    for (const x of u) v += (x - m) ** 2;
    v /= n;
    expect(Math.abs(m - 1)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
    expect(Math.abs(v - 1 / 12)).toBeLessThan(0.002);
  });
});

describe('BulkRng.fillNoisyRows', () => {
  const k = baselineKernels();
  /** The rows through the JavaScript path (fillNormalAffine per row, then mulUniform), or the WebAssembly kernel. */
  const draw = (wasm: boolean, seed: number, rows: number, per: number, n: number): { out: Float32Array; next: Float64Array } => {
    const prev = setBaselineKernelsEnabled(wasm);
    try {
      const base = Float32Array.from({ length: Math.ceil(rows / per) * n }, (_, i) => Math.cos(i * 0.3));
      const out = new Float32Array(rows * n);
      const g = new BulkRng(new Rng(seed));
      // twice, so that the state handed back by the first fill is exercised
      g.fillNoisyRows(out, base, rows, per, n, 0.25, 0.5, 1.5);
      g.fillNoisyRows(out, base, rows, per, n, 0.25, 0.5, 1.5);
      const next = new Float64Array(64);
      g.fillNormal(next, 0, 64);
      return { out, next };
    } finally {
      setBaselineKernelsEnabled(prev);
    }
  };

  it('JavaScript path: the draws of fillNormalAffine row by row, then mulUniform', () => {
    const prev = setBaselineKernelsEnabled(false);
    try {
      const [rows, per, n] = [7, 3, 11];
      const base = Float32Array.from({ length: 3 * n }, (_, i) => i * 0.01);
      const a = new Float32Array(rows * n);
      new BulkRng(new Rng(5)).fillNoisyRows(a, base, rows, per, n, 0.5, 0.8, 1.2);
      const b = new Float32Array(rows * n);
      const g = new BulkRng(new Rng(5));
      for (let r = 0; r < rows; r++) g.fillNormalAffine(b, r * n, n, base, Math.floor(r / per) * n, 0.5);
      g.mulUniform(b, 0, rows * n, 0.8, 1.2);
      expect(Array.from(a)).toEqual(Array.from(b));
    } finally {
      setBaselineKernelsEnabled(prev);
    }
  });

  it.runIf(k !== null)('the WebAssembly kernel gives the same values and leaves the same state (slow draws included)', () => {
    // 20 000 draws per fill: a few hundred go through the wedge/tail slow path
    for (const [seed, rows, per, n] of [[0, 40, 5, 64], [7, 333, 4, 61], [123, 3, 1, 1]] as const) {
      const js = draw(false, seed, rows, per, n);
      const wasm = draw(true, seed, rows, per, n);
      expect(Array.from(wasm.out)).toEqual(Array.from(js.out));
      expect(Array.from(wasm.next)).toEqual(Array.from(js.next));
    }
  });
});

describe('GaussianBlur', () => {
  it('equals gaussianBlur2d (zero padding at every border), buffers reused across calls; WebAssembly and JavaScript alike', async () => {
    const { GaussianBlur, gaussianBlur2d } = await import('../src/spatial.js');
    for (const wasm of [true, false]) {
      const prev = setBaselineKernelsEnabled(wasm);
      try {
        for (const shape of [[2, 3, 5, 8], [1, 1, 2, 9]]) {
          const size = shape.reduce((a, b) => a * b, 1);
          const blur = new GaussianBlur(shape, 7, 3);
          for (let rep = 0; rep < 2; rep++) {
            const data = Float32Array.from({ length: size }, (_, i) => Math.sin(i * 0.7 + rep));
            expect(Array.from(blur.apply(data))).toEqual(Array.from(gaussianBlur2d(data, shape, 7, 3)));
          }
        }
      } finally {
        setBaselineKernelsEnabled(prev);
      }
    }
  });
});
