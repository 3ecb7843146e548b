import { describe, expect, it } from 'vitest';
import { Rng } from '@sop/core';
import { RidgeWorkspace, weightedRidge } from '../src/linalg.js';

describe('RidgeWorkspace', () => {
  it('matches weightedRidge (dense float design and 0/1 design, at offsets, reused across fits)', () => {
    const rng = new Rng(11);
    const ws = new RidgeWorkspace(7);
    for (const binary of [false, true]) {
      for (let rep = 0; rep < 5; rep++) {
        const n = 5 + rep * 9;
        const p = 7;
        const off = 3 * p;
        const X32 = new Float32Array(off + n * p);
        for (let i = off; i < X32.length; i++) X32[i] = binary ? (rng.next() < 0.5 ? 1 : 0) : rng.normal() * 2 + 1;
        const X = Float64Array.from(X32.subarray(off));
        const y = Float64Array.from({ length: n }, () => rng.normal() + 3);
        const w = Float64Array.from({ length: n }, (_, i) => (i === 2 ? 0 : rng.next()));
        for (const alpha of [1, 0.01]) {
          const ref = weightedRidge(X, y, w, n, p, alpha);
          const out = new Float32Array(2 + p);
          ws.fit(X32, off, n, y, 0, w, 0, alpha, out, 2);
          for (let j = 0; j < p; j++) expect(out[2 + j]).toBeCloseTo(ref.coef[j], 5);
          expect(ws.intercept).toBeCloseTo(ref.intercept, 5);
        }
      }
    }
  });

  it('solves a closed form: y = 2 + 3·x₀ − x₁ exactly with α = 0; one feature with α: β = Sxy / (Sxx + α)', () => {
    const X = Float32Array.from([0, 0, 1, 0, 0, 1, 1, 1, 1, 0]);
    const y = Float64Array.from([2, 5, 1, 4, 5]);
    const w = Float64Array.from([1, 2, 0.5, 1, 3]);
    const ws = new RidgeWorkspace(2);
    const out = new Float64Array(2);
    ws.fit(X, 0, 5, y, 0, w, 0, 0, out, 0);
    expect(out[0]).toBeCloseTo(3, 10);
    expect(out[1]).toBeCloseTo(-1, 10);
    expect(ws.intercept).toBeCloseTo(2, 10);
    // one centred feature: β = Σw(x − x̄)(y − ȳ) / (Σw(x − x̄)² + α)
    const x1 = Float32Array.from([1, 0, 1, 1]);
    const y1 = Float64Array.from([3, 1, 2, 5]);
    const w1 = Float64Array.from([1, 1, 2, 0.5]);
    const sw = 4.5;
    const xm = (1 + 2 + 0.5) / sw;
    const ym = (3 + 1 + 4 + 2.5) / sw;
    let sxy = 0;
    let sxx = 0;
    for (let i = 0; i < 4; i++) {
      sxy += w1[i] * (x1[i] - xm) * (y1[i] - ym);
      sxx += w1[i] * (x1[i] - xm) ** 2;
    }
    const ws1 = new RidgeWorkspace(1);
    const o1 = new Float64Array(1);
    ws1.fit(x1, 0, 4, y1, 0, w1, 0, 0.7, o1, 0);
    expect(o1[0]).toBeCloseTo(sxy / (sxx + 0.7), 12);
    expect(ws1.intercept).toBeCloseTo(ym - o1[0] * xm, 12);
  });

  it('prepare once, solve many: the same coefficients as fitting each target from scratch', () => {
    const rng = new Rng(5);
    const n = 30;
    const p = 6;
    const X = Float32Array.from({ length: n * p }, () => (rng.next() < 0.5 ? 1 : 0));
    const w = Float64Array.from({ length: n }, () => rng.next());
    const ys = Array.from({ length: 4 }, () => Float64Array.from({ length: n }, () => rng.normal()));
    const shared = new RidgeWorkspace(p);
    shared.prepare(X, 0, n, w, 0, 0.5);
    const fresh = new RidgeWorkspace(p);
    for (const y of ys) {
      const a = new Float64Array(p);
      const b = new Float64Array(p);
      shared.solve(y, 0, a, 0);
      fresh.fit(X, 0, n, y, 0, w, 0, 0.5, b, 0);
      expect(Array.from(a)).toEqual(Array.from(b));
      expect(shared.intercept).toBe(fresh.intercept);
      const ref = weightedRidge(Float64Array.from(X), y, w, n, p, 0.5);
      for (let j = 0; j < p; j++) expect(a[j]).toBeCloseTo(ref.coef[j], 8);
    }
  });

  it('returns zeros when every weight is zero, and handles a rank-deficient design with α = 0', () => {
    const ws = new RidgeWorkspace(2);
    const out = new Float64Array(2).fill(9);
    ws.fit(Float32Array.from([1, 0, 0, 1]), 0, 2, [1, 2], 0, [0, 0], 0, 1, out, 0);
    expect([...out]).toEqual([0, 0]);
    // two identical columns: singular without jitter; the fallback still returns finite coefficients
    ws.fit(Float32Array.from([1, 1, 0, 0, 1, 1]), 0, 3, [2, 0, 2], 0, [1, 1, 1], 0, 0, out, 0);
    expect(Number.isFinite(out[0]) && Number.isFinite(out[1])).toBe(true);
    expect(out[0] + out[1]).toBeCloseTo(2, 4);
  });
});
