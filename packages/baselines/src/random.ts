/**
 * Bulk random draws for the attributors that need many of them (AMPE's Gaussian noise): a xoshiro128** generator
 * (the algorithm of core's `Rng`) whose state is seeded from a core `Rng` — so results stay deterministic by seed —
 * and kept in local variables while a buffer is filled, and an exact standard normal sampler (the ziggurat of
 * Marsaglia & Tsang 2000, 128 layers) that needs one 32-bit draw per value most of the time instead of Box–Muller's
 * two uniforms, a log, a square root and a cosine. Core's `Rng` is left as it is (its stream is relied on elsewhere).
 */
import type { Rng } from '@sop/core';
import { baselineKernels, noisyRowsKernel } from './kernels/index.js';

const LAYERS = 128;
/** Magnitude draws are signed 25-bit integers (bits 7–31 of a draw; bits 0–6 pick the layer). */
const M = 2 ** 24;
const R = 3.442619855899;
const KN = new Float64Array(LAYERS);
const WN = new Float64Array(LAYERS);
const FN = new Float64Array(LAYERS);
{
  const vn = 9.91256303526217e-3;
  let dn = R;
  let tn = dn;
  const q = vn / Math.exp(-0.5 * dn * dn);
  KN[0] = (dn / q) * M;
  KN[1] = 0;
  WN[0] = q / M;
  WN[LAYERS - 1] = dn / M;
  FN[0] = 1;
  FN[LAYERS - 1] = Math.exp(-0.5 * dn * dn);
  for (let i = LAYERS - 2; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(vn / dn + Math.exp(-0.5 * dn * dn)));
    KN[i + 1] = (dn / tn) * M;
    tn = dn;
    FN[i] = Math.exp(-0.5 * dn * dn);
    WN[i] = dn / M;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** xoshiro128** seeded from a core Rng; fills buffers with uniforms or standard normals. */
export class BulkRng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(rng: Rng) {
    this.s0 = rng.nextU32() | 0;
    this.s1 = rng.nextU32() | 0;
    this.s2 = rng.nextU32() | 0;
    this.s3 = rng.nextU32() | 0;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** One uniform 32-bit unsigned integer (for the rare slow paths). */
  nextU32(): number {
    const s0 = this.s0;
    const s1 = this.s1;
    const s2 = this.s2;
    const s3 = this.s3;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    const n2 = s2 ^ s0;
    const n3 = s3 ^ s1;
    this.s1 = s1 ^ n2;
    this.s0 = s0 ^ n3;
    this.s2 = n2 ^ t;
    this.s3 = rotl(n3, 11);
    return result;
  }

  /** Uniform in (0, 1) (never 0: safe under a log). */
  private open01(): number {
    return (this.nextU32() + 0.5) / 4294967296;
  }

  /** out[start … start + n) = lo + (hi − lo)·U, U uniform in [0, 1). */
  fillUniform(out: Float32Array | Float64Array, start: number, n: number, lo: number, hi: number): void {
    this.uniform(out, start, n, lo, hi, false);
  }

  /** out[start … start + n) = standard normal draws (ziggurat; exact up to the 2⁻²⁴ resolution of a layer). */
  fillNormal(out: Float32Array | Float64Array, start: number, n: number): void {
    this.fillNormalAffine(out, start, n, null, 0, 1);
  }

  /**
   * out[start + i] = base[baseStart + i] + scale·z_i for i < n (base null: 0 + scale·z_i), z_i standard normal draws
   * in order, the same draws as {@link fillNormal}.
   */
  fillNormalAffine(out: Float32Array | Float64Array, start: number, n: number, base: Float32Array | null, baseStart: number, scale: number): void {
    let s0 = this.s0;
    let s1 = this.s1;
    let s2 = this.s2;
    let s3 = this.s3;
    const kn = KN;
    const wn = WN;
    for (let i = 0; i < n; i++) {
      const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = rotl(s3, 11);
      const iz = r & 127;
      const j = r >> 7;
      let z: number;
      if (Math.abs(j) < kn[iz]) z = j * wn[iz];
      else {
        // rare (≈ 1.2%): the wedge or the tail; hand the state over to the slow path and take it back
        this.s0 = s0;
        this.s1 = s1;
        this.s2 = s2;
        this.s3 = s3;
        z = this.slowNormal(j, iz);
        s0 = this.s0;
        s1 = this.s1;
        s2 = this.s2;
        s3 = this.s3;
      }
      out[start + i] = base ? base[baseStart + i] + scale * z : scale * z;
    }
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
  }

  /** out[start … start + n) *= lo + (hi − lo)·U, U uniform in [0, 1) (the draws of {@link fillUniform}). */
  mulUniform(out: Float32Array | Float64Array, start: number, n: number, lo: number, hi: number): void {
    this.uniform(out, start, n, lo, hi, true);
  }

  /** The uniform draws of fillUniform / mulUniform: written into `out`, or multiplied into it. */
  private uniform(out: Float32Array | Float64Array, start: number, n: number, lo: number, hi: number, multiply: boolean): void {
    let s0 = this.s0;
    let s1 = this.s1;
    let s2 = this.s2;
    let s3 = this.s3;
    const scale = (hi - lo) / 4294967296;
    for (let i = start, e = start + n; i < e; i++) {
      const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = rotl(s3, 11);
      const v = lo + r * scale;
      out[i] = multiply ? out[i] * v : v;
    }
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
  }

  /**
   * out[r·n + i] = (base[⌊r / per⌋·n + i] + scale·z)·(lo + (hi − lo)·U) for r < rows: {@link fillNormalAffine} row by
   * row, then {@link mulUniform} over all of them (the same draws and values). In WebAssembly ({@link noisyRowsKernel})
   * when the kernels are available, the ziggurat's rare slow draws coming back to {@link slowNormal}.
   */
  fillNoisyRows(out: Float32Array, base: Float32Array, rows: number, per: number, n: number, scale: number, lo: number, hi: number): void {
    const k = baselineKernels();
    if (!k) {
      for (let r = 0; r < rows; r++) this.fillNormalAffine(out, r * n, n, base, Math.floor(r / per) * n, scale);
      this.mulUniform(out, 0, rows * n, lo, hi);
      return;
    }
    const state = this.stateScratch;
    state[0] = this.s0;
    state[1] = this.s1;
    state[2] = this.s2;
    state[3] = this.s3;
    noisyRowsKernel(k, state, KN, WN, base, rows, per, n, scale, lo, hi, out, (j, iz, st) => {
      this.s0 = st[0];
      this.s1 = st[1];
      this.s2 = st[2];
      this.s3 = st[3];
      const z = this.slowNormal(j, iz);
      st[0] = this.s0;
      st[1] = this.s1;
      st[2] = this.s2;
      st[3] = this.s3;
      return z;
    });
    this.s0 = state[0];
    this.s1 = state[1];
    this.s2 = state[2];
    this.s3 = state[3];
  }

  private readonly stateScratch = new Int32Array(4);

  /** Marsaglia & Tsang's `nfix`: the draw (j, iz) fell outside its layer's rectangle. */
  private slowNormal(j: number, iz: number): number {
    for (;;) {
      if (iz === 0) {
        // the tail beyond R (Marsaglia 1964)
        let x: number;
        let y: number;
        do {
          x = -Math.log(this.open01()) / R;
          y = -Math.log(this.open01());
        } while (y + y < x * x);
        return j > 0 ? R + x : -R - x;
      }
      const x = j * WN[iz];
      if (FN[iz] + this.open01() * (FN[iz - 1] - FN[iz]) < Math.exp(-0.5 * x * x)) return x;
      const r = this.nextU32() | 0;
      iz = r & 127;
      j = r >> 7;
      if (Math.abs(j) < KN[iz]) return j * WN[iz];
    }
  }
}
