import { UserError, sizeOf, type Explanation, type FeatureSpace, type Inputs, type Modality } from '@sop/core';
import type { ExplanationView, GroupSet } from './html.js';

export interface ExplanationViewOptions {
  inputs: Inputs;
  space: FeatureSpace;
  modality: Modality;
  /** Tokens of example `index` (text), one per feature. */
  tokens?: string[];
  classNames?: string[];
  title?: string;
  /** Most groups shown (default 8). */
  maxGroups?: number;
}

function softmaxRow(v: Float32Array, i: number, c: number): number[] {
  const row = Array.from(v.subarray(i * c, (i + 1) * c));
  const mx = Math.max(...row);
  const e = row.map((x) => Math.exp(x - mx));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/**
 * Build the view of example `index` of a core Explanation for {@link renderExplanationHtml}: images (and maps) get
 * their groups expanded to pixels through the feature space, text gets token spans, tabular gets a ranking and groups.
 */
export function explanationView(exp: Explanation, index: number, o: ExplanationViewOptions): ExplanationView {
  const { inputs, space } = o;
  const d = exp.numFeatures;
  const i = index;
  const n = inputs.x.shape[0];
  if (!(Number.isInteger(i) && i >= 0 && i < n)) throw new UserError(`example index ${i} is out of range (0…${n - 1})`, 'pick an example that exists');
  const c = exp.numOutputs;
  const target = exp.targets[i];
  const className = o.classNames?.[target] ?? String(target);
  const prediction =
    c > 1 && o.modality !== 'map'
      ? `explained class: ${className} (p = ${softmaxRow(exp.outputs, i, c)[target].toFixed(3)})`
      : `output: ${Array.from(exp.outputs.subarray(i * c, (i + 1) * c), (v) => v.toFixed(4)).join(', ')}`;
  const attributions = exp.attributions.subarray(i * d, (i + 1) * d);
  const view: ExplanationView = { title: o.title, method: exp.meta.method, prediction };
  const g = exp.groups;
  const rowGroups = (): GroupSet | undefined =>
    g ? { masks: g.masks.subarray(i * g.count * d, (i + 1) * g.count * d), count: g.count, weights: g.weights.subarray(i * g.count, (i + 1) * g.count) } : undefined;

  if (o.modality === 'image' || o.modality === 'map') {
    if (!(inputs.x.data instanceof Float32Array)) throw new UserError('image inputs must be float', 'pass pixel values as float32');
    const rowShape = inputs.x.shape.slice(1);
    const p = sizeOf(rowShape);
    const shape = rowShape.length === 3 ? rowShape : rowShape.length === 2 ? rowShape : [1, ...rowShape];
    const hw = shape.length === 3 ? shape[1] * shape[2] : shape[0] * shape[1];
    const pixels = inputs.x.data.subarray(i * p, (i + 1) * p);
    // expand feature-level rows (groups, attribution) to pixels; keep channel 0 of each expanded row
    const expandRows = (rows: Float32Array, count: number): Float32Array => {
      const ex = space.expand(rows, new Int32Array(count).fill(i), inputs).data;
      const out = new Float32Array(count * hw);
      for (let r = 0; r < count; r++) out.set(ex.subarray(r * p, r * p + hw), r * hw);
      return out;
    };
    const rg = rowGroups();
    view.image = {
      pixels,
      shape,
      attributions: expandRows(Float32Array.from(attributions), 1),
      groups: rg ? { ...rg, masks: expandRows(Float32Array.from(rg.masks), rg.count) } : undefined,
      maxGroups: o.maxGroups,
    };
  } else if (o.modality === 'text') {
    const tokens = o.tokens ?? space.featureNames();
    if (tokens.length !== d) throw new UserError(`text view needs ${d} tokens, got ${tokens.length}`, 'pass the tokens of this example (one per feature)');
    view.text = { tokens, attributions, groups: rowGroups(), maxGroups: o.maxGroups };
  } else {
    const x = inputs.x.data instanceof Float32Array ? Array.from(inputs.x.data.subarray(i * d, (i + 1) * d)) : undefined;
    view.tabular = { featureNames: space.featureNames(), values: x, attributions, groups: rowGroups(), maxGroups: o.maxGroups };
  }
  return view;
}
