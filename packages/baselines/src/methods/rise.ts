/**
 * RISE (Petsiuk et al. 2018): N = `budget` random masks, each a coarse Bernoulli(p) grid (`cells` per grid axis,
 * default min(g, 8); p = `p`, 0.5) bilinearly upsampled over the feature grid with a random shift, so masks are soft
 * over features (the masker blends). Saliency S_c = Σ_i f_c(x ⊙ M_i) · M_i / (N · p) with f_c the softmax probability
 * (`output: 'prob'`, default). `referenceCompat: true` drops the 1/(N·p) normalisation like exlib. Masks are shared
 * by the batch's examples.
 */
import { UserError, type AttributeOptions, type Attribution, type AttributionContext, type Attributor, type Inputs, type Rng } from '@sop/core';
import { BatchRunner, scorePerturbations } from '../batching.js';
import { baselineMasker, budgetOf, finish, numberOption, scoreModeOf, seededDesign } from '../common.js';

/** Upsample a coarse 1-D line of c values to g positions with cell size ceil(g/c), random shift (bilinear). */
function upsampleAxis(c: number, g: number, shift: number): { lo: Int32Array; hi: Int32Array; t: Float64Array } {
  const cs = Math.ceil(g / c);
  const lo = new Int32Array(g);
  const hi = new Int32Array(g);
  const t = new Float64Array(g);
  for (let u = 0; u < g; u++) {
    // position in the (c+1)·cs upsampled line, source coordinate in the (c+1) coarse line (align_corners = false)
    const src = Math.min(c, Math.max(0, (u + shift + 0.5) / cs - 0.5));
    lo[u] = Math.floor(src);
    hi[u] = Math.min(c, lo[u] + 1);
    t[u] = src - lo[u];
  }
  return { lo, hi, t };
}

/** {@link upsampleAxis} for every shift 0 … ceil(g/c) − 1 (or just 0 when c = g, where no shift is drawn). */
function axisTables(c: number, g: number): { lo: Int32Array; hi: Int32Array; t: Float64Array }[] {
  const shifts = c === g ? 1 : Math.ceil(g / c);
  return Array.from({ length: shifts }, (_, s) => upsampleAxis(c, g, s));
}

/** N RISE masks over a feature grid ([d] or [gh, gw]), [N, d]. */
export function riseMasks(grid: number[], cells: number[], N: number, p: number, rng: Rng): Float32Array {
  const dims = grid.length === 1 ? [1, grid[0]] : grid;
  const cc = cells.length === 1 ? [1, cells[0]] : cells;
  const [gh, gw] = dims;
  const [ch, cw] = cc;
  const d = gh * gw;
  const out = new Float32Array(N * d);
  const cw1 = cw + 1;
  const coarse = new Float64Array((ch + 1) * cw1);
  const binaryH = ch === gh;
  const binaryW = cw === gw;
  // interpolation tables per shift, built once (the draws per mask are unchanged: the coarse grid, then the shifts)
  const tabH = axisTables(ch, gh);
  const tabW = axisTables(cw, gw);
  const shiftsH = Math.ceil(gh / ch);
  const shiftsW = Math.ceil(gw / cw);
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < coarse.length; i++) coarse[i] = rng.next() < p ? 1 : 0;
    const ah = tabH[binaryH ? 0 : rng.int(shiftsH)];
    const aw = tabW[binaryW ? 0 : rng.int(shiftsW)];
    const awLo = aw.lo;
    const awHi = aw.hi;
    const awT = aw.t;
    for (let r = 0; r < gh; r++) {
      const rlo = ah.lo[r] * cw1;
      const rhi = ah.hi[r] * cw1;
      const tr = ah.t[r];
      const o = n * d + r * gw;
      for (let c = 0; c < gw; c++) {
        const a = coarse[rlo + awLo[c]];
        const b = coarse[rlo + awHi[c]];
        const e = coarse[rhi + awLo[c]];
        const f = coarse[rhi + awHi[c]];
        const tc = awT[c];
        const top = a + (b - a) * tc;
        const bot = e + (f - e) * tc;
        out[o + c] = top + (bot - top) * tr;
      }
    }
  }
  return out;
}

function cellsOf(options: AttributeOptions, grid: number[]): number[] {
  const v = options.cells;
  const def = grid.map((g) => Math.min(g, 8));
  if (v === undefined) return def;
  const arr = typeof v === 'number' ? grid.map(() => v) : Array.isArray(v) ? (v as number[]) : null;
  if (!arr || arr.length !== grid.length || arr.some((c, i) => !Number.isInteger(c) || c < 1 || c > grid[i])) {
    throw new UserError(`option cells must be a positive integer (or one per grid axis) no larger than the feature grid [${grid.join(', ')}]`, `e.g. cells: ${def.join(', ')}`);
  }
  return arr;
}

export const rise: Attributor = {
  name: 'rise',
  access: 'black-box',
  async attribute(inputs: Inputs, context: AttributionContext, options: AttributeOptions = {}): Promise<Attribution> {
    const masker = baselineMasker(context, options);
    const runner = new BatchRunner(context, inputs, options, masker);
    const space = context.space;
    const d = space.numFeatures;
    const B = inputs.x.shape[0];
    const N = budgetOf(options);
    const p = numberOption(options, 'p', 0.5, (v) => v > 0 && v < 1, 'a probability in (0, 1)');
    const mode = scoreModeOf(options, 'prob');
    const grid = space.grid.length ? space.grid : [d];
    const cells = cellsOf(options, grid);
    const M = seededDesign('rise', context, options, `${grid.join('x')}|${cells.join('x')}|${N}|${p}`, (rng) => riseMasks(grid, cells, N, p, rng));
    // row 0 per example: the unmasked input (targets); rows 1..N: masks
    const per = N + 1;
    const masks = new Float32Array(B * per * d);
    for (let b = 0; b < B; b++) {
      masks.fill(1, b * per * d, b * per * d + d);
      masks.set(M, b * per * d + d);
    }
    const { outputs: out, numOutputs: C, targets, scores: f, rows } = await scorePerturbations(runner, inputs, masks, per, options, mode);
    const norm = options.referenceCompat === true ? 1 : 1 / (N * p);
    const values = new Float32Array(B * d);
    const acc = new Float64Array(d);
    for (let b = 0; b < B; b++) {
      acc.fill(0);
      for (let n = 0; n < N; n++) {
        const fn = f[b * per + 1 + n] * norm;
        const o = n * d;
        for (let j = 0; j < d; j++) acc[j] += fn * M[o + j];
      }
      values.set(acc, b * d);
    }
    return finish('rise', values, d, targets, runner, options, { masks: N, cells, p, output: mode });
  },
};
