import { UserError, type MethodRun, type Metric, type MetricValue } from '@sop/core';
import { summarise } from './util.js';

/**
 * Input-level data for map purity (CosmoGrid): the maps' pixel values and, per output (Ω_m, σ_8, …), the method's
 * selected region expanded to pixels. The evaluation runner fills `run.maps` for metrics that set `needsMaps`.
 */
export interface MapMasks {
  /** Pixel values per example [N, P] (the primary input row, flattened). */
  values: Float32Array;
  /** Pixels P per example. */
  pixels: number;
  /** Selected region per example and output [N, C, P] (> 0.5 = selected). */
  masks: Float32Array;
  /** Number of outputs C explained (one mask each). */
  outputs: number;
}

/** A MethodRun with the extra input-level data purity needs. */
export interface MapRun extends MethodRun {
  maps?: MapMasks;
}

export interface PurityThresholds {
  /** τ_c: a mask "finds clusters" when its bright fraction exceeds this (reference 0.015). */
  bright?: number;
  /** τ_v: a mask "finds voids" when its dark fraction exceeds this (reference 0.6). */
  dark?: number;
  /** Brightness threshold in image stds (reference 3). */
  sigmas?: number;
}

/**
 * Bright and dark fractions of one masked map (methods §4.2, CosmoGrid): σ = std of the whole image (unbiased, torch's
 * default); bright = #(masked px > 3σ) / |M|; dark = #(masked px < 0) / |M|, counted only if the mean masked value is
 * negative (else 0). An empty mask gives 0 for both.
 */
export function maskFractions(values: ArrayLike<number>, mask: ArrayLike<number>, sigmas = 3): { bright: number; dark: number } {
  const p = values.length;
  let mu = 0;
  for (let i = 0; i < p; i++) mu += values[i];
  mu /= p;
  let v = 0;
  for (let i = 0; i < p; i++) v += (values[i] - mu) * (values[i] - mu);
  const sigma = Math.sqrt(v / Math.max(1, p - 1));
  let size = 0;
  let bright = 0;
  let dark = 0;
  let sum = 0;
  for (let i = 0; i < p; i++) {
    if (!(mask[i] > 0.5)) continue;
    size++;
    sum += values[i];
    if (values[i] > sigmas * sigma) bright++;
    if (values[i] < 0) dark++;
  }
  if (size === 0) return { bright: 0, dark: 0 };
  return { bright: bright / size, dark: sum / size < 0 ? dark / size : 0 };
}

/**
 * Per-example purity: the share of the 2·C tests (bright_c > τ_c, dark_c > τ_v for each output c) that pass. Its mean
 * over examples equals the reference's "mean of the 4 ratios" (Ω-bright, Ω-dark, σ-bright, σ-dark) for C = 2.
 */
export function purityPerExample(maps: MapMasks, thresholds: PurityThresholds = {}): Float64Array {
  const tb = thresholds.bright ?? 0.015;
  const td = thresholds.dark ?? 0.6;
  const { pixels: p, outputs: c } = maps;
  const n = Math.floor(maps.values.length / p);
  if (maps.masks.length !== n * c * p) throw new UserError(`purity: masks have ${maps.masks.length} values, expected ${n}×${c}×${p}`, 'pass one pixel mask per example and output');
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const vals = maps.values.subarray(i * p, (i + 1) * p);
    let pass = 0;
    for (let k = 0; k < c; k++) {
      const f = maskFractions(vals, maps.masks.subarray((i * c + k) * p, (i * c + k + 1) * p), thresholds.sigmas ?? 3);
      if (f.bright > tb) pass++;
      if (f.dark > td) pass++;
    }
    out[i] = pass / (2 * c);
  }
  return out;
}

/** Mean purity over examples (↑). */
export function purity(maps: MapMasks, thresholds: PurityThresholds = {}): number {
  const v = purityPerExample(maps, thresholds);
  return v.reduce((a, b) => a + b, 0) / v.length;
}

/** A metric that needs `run.maps` (input-level masks per output); the evaluation runner checks this flag. */
export interface MapMetric extends Metric {
  readonly needsMaps: true;
}

/**
 * Map purity (CosmoGrid, Table 1 "CG Pur ↑"): do the selected regions align with voids (dark fraction > τ_v = 0.6)
 * and clusters (bright fraction above 3σ > τ_c = 0.015)? Options: `bright`, `dark`, `sigmas` thresholds.
 */
export const purityMetric: MapMetric = {
  name: 'purity',
  direction: 'higher',
  category: 'localisation',
  tasks: ['regression', 'classification'],
  modalities: ['map'],
  requires: ['featureMasks'],
  needsMaps: true,
  compute(run: MethodRun, options?: Record<string, unknown>): MetricValue {
    const maps = (run as MapRun).maps;
    if (!maps) {
      throw new UserError(`metric 'purity' needs input-level maps and per-output masks (run.maps) for method '${run.method}'`, 'run it through evaluate() with modality map, or fill run.maps');
    }
    const o = options ?? {};
    const th: PurityThresholds = { bright: o.bright as number | undefined, dark: o.dark as number | undefined, sigmas: o.sigmas as number | undefined };
    return summarise(purityPerExample(maps, th), options, { thresholds: { bright: th.bright ?? 0.015, dark: th.dark ?? 0.6, sigmas: th.sigmas ?? 3 } });
  },
};

export function isMapMetric(m: Metric): m is MapMetric {
  return (m as Partial<MapMetric>).needsMaps === true;
}
