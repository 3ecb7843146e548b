/**
 * The "-F" conversion (methods §4.1, decision 7): turn any attributor into a predictor with an explanation. Rank the
 * features by attribution (all channels summed by the feature space; descending, ties by lower index), keep the top
 * ⌊keep·d⌋ (d = the example's valid features when the space marks padding), remove the rest through the masker, and
 * predict with the frozen backbone on that masked input. `deletion: true` keeps the bottom ⌊keep·d⌋ instead.
 * `allClasses: true` also returns g_c = Σ_features attribution_c for every class c (fidelity): it runs the attributor
 * once more per class (C extra attributions: C× the method's cost, e.g. C·budget rows for LIME/SHAP/RISE).
 */
import {
  UserError,
  type AttributeOptions,
  type Attribution,
  type AttributionContext,
  type Attributor,
  type ExplainOptions,
  type Explanation,
  type FaithfulExplainer,
  type Inputs,
} from '@sop/core';
import { BatchRunner } from './batching.js';
import { identityRows } from './common.js';

/** Top (or bottom) ⌊keep·n⌋ features per example as a 0/1 mask [B, d]; ties by index. */
export function topFeatureMasks(values: Float32Array, B: number, d: number, keep: number, valid?: Float32Array, bottom = false): Float32Array {
  const masks = new Float32Array(B * d);
  for (let b = 0; b < B; b++) {
    const idx: number[] = [];
    for (let j = 0; j < d; j++) if (!valid || valid[b * d + j] > 0) idx.push(j);
    const k = Math.floor(keep * idx.length + 1e-9);
    const v = values.subarray(b * d, (b + 1) * d);
    idx.sort((i, j) => (bottom ? v[i] - v[j] : v[j] - v[i]) || i - j);
    for (let t = 0; t < k; t++) masks[b * d + idx[t]] = 1;
  }
  return masks;
}

export interface FaithfulExplainerFactory {
  readonly name: string;
  readonly attributor: Attributor;
  /** Bind the -F explainer to a context (backbone, space, masker); `defaults` are passed to every attribute call. */
  create(context: AttributionContext, defaults?: AttributeOptions): FaithfulExplainer;
}

export function toFaithful(attributor: Attributor, context: AttributionContext, defaults: AttributeOptions = {}): FaithfulExplainer {
  const name = `${attributor.name}-f`;
  return {
    name,
    faithfulByConstruction: attributor.access === 'self',
    async explain(inputs: Inputs, options: ExplainOptions): Promise<Explanation> {
      const keep = options.keep;
      if (typeof keep !== 'number' || !(keep > 0 && keep <= 1)) {
        throw new UserError(`${name}: keep must be a fraction in (0, 1], got ${JSON.stringify(keep)}`, 'set keep to e.g. 0.2 (the top 20% of features)');
      }
      const base: AttributeOptions = { ...defaults };
      if (options.target !== undefined) base.target = options.target;
      if (options.labels !== undefined) base.labels = options.labels;
      if (options.budget !== undefined) base.budget = options.budget;
      if (options.seed !== undefined) base.seed = options.seed;
      if (options.onProgress !== undefined) base.onProgress = options.onProgress;
      const attr: Attribution = await attributor.attribute(inputs, context, base);
      const B = inputs.x.shape[0];
      const d = attr.numFeatures;
      const valid = context.space.validFeatures?.(inputs);
      const featureMasks = topFeatureMasks(attr.values, B, d, keep, valid, options.deletion === true);
      const runner = new BatchRunner(context, inputs, base);
      const out = await runner.forwardMasked(inputs, featureMasks, identityRows(B));
      let evaluations = attr.meta.evaluations + runner.evaluations;
      let gradients = attr.meta.gradients ?? 0;
      const C = out.shape[1];
      const exp: Explanation = {
        outputs: out.data,
        numOutputs: C,
        attributions: attr.values,
        numFeatures: d,
        targets: attr.targets,
        featureMasks,
        meta: { method: name, evaluations, attribution: attr.meta, keep },
      };
      if (attr.groups) exp.meta.groups = attr.groups;
      if (options.allClasses) {
        const g = new Float32Array(B * C);
        for (let c = 0; c < C; c++) {
          const ac = await attributor.attribute(inputs, context, { ...base, target: c, onProgress: undefined });
          evaluations += ac.meta.evaluations;
          gradients += ac.meta.gradients ?? 0;
          for (let b = 0; b < B; b++) {
            let s = 0;
            for (let j = 0; j < d; j++) s += ac.values[b * d + j];
            g[b * C + c] = s;
          }
        }
        exp.allClassAttributions = g;
        exp.meta.evaluations = evaluations;
      }
      exp.meta.gradients = gradients;
      return exp;
    },
  };
}

/** A factory for `<name>-f`, as bound in the DI container. */
export function faithfulFactory(attributor: Attributor): FaithfulExplainerFactory {
  return {
    name: `${attributor.name}-f`,
    attributor,
    create: (context, defaults) => toFaithful(attributor, context, defaults),
  };
}
