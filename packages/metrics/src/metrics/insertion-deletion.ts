import { UserError, type MethodRun, type Metric, type MetricValue } from '@sop/core';
import { need, summarise } from './util.js';

/** The reference's 10 fractions 0.1, 0.2, …, 1.0 (linspace(0.1, 1, 10)). */
export function defaultFractions(steps = 10): number[] {
  return Array.from({ length: steps }, (_, i) => (i + 1) / steps);
}

/**
 * The reference's insertion/deletion score ("scores_perc") for one curve: mean(curve) / curve[f = 1.0], where the last
 * point is the full input. `fractions` must end at 1.0.
 */
export function referenceScore(curve: ArrayLike<number>): number {
  const n = curve.length;
  if (n === 0) return NaN;
  let s = 0;
  for (let i = 0; i < n; i++) s += curve[i];
  return s / n / curve[n - 1];
}

/**
 * Classic trapezoid area under the curve over `fractions` (x) and `curve` (y); when `fractions` does not start at 0
 * the area is taken over [fractions[0], fractions[last]] only, normalised by its width so that a constant curve y
 * gives y.
 */
export function trapezoidAuc(fractions: ArrayLike<number>, curve: ArrayLike<number>): number {
  if (fractions.length !== curve.length) throw new UserError(`trapezoidAuc: ${fractions.length} fractions but ${curve.length} curve values`, 'pass one value per fraction');
  if (curve.length === 0) return NaN;
  if (curve.length === 1) return curve[0];
  let a = 0;
  for (let i = 1; i < curve.length; i++) a += ((fractions[i] - fractions[i - 1]) * (curve[i] + curve[i - 1])) / 2;
  return a / (fractions[fractions.length - 1] - fractions[0]);
}

/** Per-example reference scores and AUCs for curves [N, steps]. */
export function curveScores(fractions: number[], curves: ArrayLike<number>): { score: Float64Array; auc: Float64Array; raw: Float64Array; meanCurve: number[] } {
  const steps = fractions.length;
  const n = Math.floor(curves.length / steps);
  const score = new Float64Array(n);
  const auc = new Float64Array(n);
  const raw = new Float64Array(n);
  const meanCurve = new Array<number>(steps).fill(0);
  for (let i = 0; i < n; i++) {
    const c = Array.from({ length: steps }, (_, j) => curves[i * steps + j]);
    score[i] = referenceScore(c);
    auc[i] = trapezoidAuc(fractions, c);
    raw[i] = c.reduce((a, b) => a + b, 0) / steps;
    for (let j = 0; j < steps; j++) meanCurve[j] += c[j] / n;
  }
  return { score, auc, raw, meanCurve };
}

/**
 * Reference insertion/deletion summary of curves [N, steps] for the whole set: per example mean(curve)/curve[last],
 * averaged (value); and the mean trapezoid AUC and the raw mean(curve). Per-example normalisation is a decision of
 * this project (the reference normalises each image's curve by its own full-image value).
 */
export function insertionDeletionSummary(fractions: number[], curves: ArrayLike<number>): { score: number; auc: number; raw: number; meanCurve: number[] } {
  const r = curveScores(fractions, curves);
  const m = (a: Float64Array) => a.reduce((x, y) => x + y, 0) / a.length;
  return { score: m(r.score), auc: m(r.auc), raw: m(r.raw), meanCurve: r.meanCurve };
}

function curveMetric(name: 'insertion' | 'deletion', regression: boolean): Metric {
  const direction = (name === 'insertion') !== regression ? 'higher' : 'lower';
  const metricName = regression ? `${name}-mse` : name;
  return {
    name: metricName,
    direction,
    category: 'faithfulness',
    tasks: [regression ? 'regression' : 'classification'],
    modalities: ['tabular', 'image', 'text', 'map'],
    requires: ['curves'],
    compute(run: MethodRun, options?: Record<string, unknown>): MetricValue {
      const c = need(run, 'curves', metricName);
      const curves = name === 'insertion' ? c.insertion : c.deletion;
      const r = curveScores(c.fractions, curves);
      // classification: the reference's normalised score; regression (MSE curves): the mean MSE along the curve.
      const perExample = regression ? r.raw : r.score;
      const m = (a: Float64Array) => a.reduce((x, y) => x + y, 0) / a.length;
      return summarise(perExample, options, {
        auc: m(r.auc),
        raw: m(r.raw),
        // the alternative reading of the reference: normalise the mean curve once instead of each example's curve
        scoreOfMeanCurve: referenceScore(r.meanCurve),
        fractions: c.fractions,
        meanCurve: r.meanCurve,
      });
    },
  };
}

/**
 * Insertion (classification): keep the top fraction f of features in attribution order, curve = probability of the
 * originally predicted class; score = mean(curve)/curve[f=1] (↑); details.auc = trapezoid AUC.
 */
export const insertionMetric: Metric = curveMetric('insertion', false);
/** Deletion (classification): keep the *least* important fraction f (= delete the top 1−f); score ↓. */
export const deletionMetric: Metric = curveMetric('deletion', false);
/** Insertion for regression (CosmoGrid): curve = per-example MSE against the label, value = mean MSE along it (↓). */
export const insertionMseMetric: Metric = curveMetric('insertion', true);
/** Deletion for regression: mean MSE along the deletion curve (↑). */
export const deletionMseMetric: Metric = curveMetric('deletion', true);

/** Companion metrics reporting the trapezoid AUC as its own column. */
function aucMetric(name: 'insertion' | 'deletion'): Metric {
  return {
    name: `${name}-auc`,
    direction: name === 'insertion' ? 'higher' : 'lower',
    category: 'faithfulness',
    tasks: ['classification'],
    modalities: ['tabular', 'image', 'text', 'map'],
    requires: ['curves'],
    compute(run: MethodRun, options?: Record<string, unknown>): MetricValue {
      const c = need(run, 'curves', `${name}-auc`);
      const r = curveScores(c.fractions, name === 'insertion' ? c.insertion : c.deletion);
      return summarise(r.auc, options, { fractions: c.fractions, meanCurve: r.meanCurve });
    },
  };
}
export const insertionAucMetric: Metric = aucMetric('insertion');
export const deletionAucMetric: Metric = aucMetric('deletion');
