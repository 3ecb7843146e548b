import type { ExplainOptions, Explanation, FaithfulExplainer } from '../explainer.js';
import type { Target } from '../attributor.js';
import type { Inputs } from '../inputs.js';
import { UserError } from '../errors.js';
import type { SopModel, SopResult } from './sop.js';

/** Class (or output) explained per example. Regression with 'predicted' explains output 0. */
export function resolveTargets(result: SopResult, target: Target | undefined, labels?: Float32Array, task: 'classification' | 'regression' = 'classification'): Int32Array {
  const { batch: B, numOutputs: C, output } = result;
  const t = new Int32Array(B);
  const tg = target ?? 'predicted';
  if (tg === 'predicted') {
    if (task === 'regression') return t;
    for (let b = 0; b < B; b++) {
      let best = 0;
      for (let c = 1; c < C; c++) if (output[b * C + c] > output[b * C + best]) best = c;
      t[b] = best;
    }
  } else if (tg === 'label') {
    if (!labels) throw new UserError("target 'label' needs the labels", 'pass labels, or use target: predicted');
    if (task === 'regression') return t;
    for (let b = 0; b < B; b++) t[b] = labels[b];
  } else if (typeof tg === 'number') t.fill(tg);
  else {
    if (tg.length !== B) throw new UserError(`target: ${tg.length} classes given for ${B} examples`, 'give one class per example');
    t.set(tg);
  }
  for (let b = 0; b < B; b++) {
    if (!(t[b] >= 0 && t[b] < C)) throw new UserError(`target class ${t[b]} is outside 0..${C - 1}`, 'pick a class index of the model');
  }
  return t;
}

/** Per-feature attribution for `targets`: Σ_j M_j · (α ⊙ ẑ)_{j,t} → [B, d]. */
export function sopAttributions(r: SopResult, targets: Int32Array): Float32Array {
  const { batch: B, numGroups: m, numFeatures: d, numOutputs: C } = r;
  const out = new Float32Array(B * d);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < m; j++) {
      const w = r.contributions[(b * m + j) * C + targets[b]];
      if (w === 0) continue;
      const mo = (b * m + j) * d;
      for (let i = 0; i < d; i++) out[b * d + i] += r.masks[mo + i] * w;
    }
  }
  return out;
}

/** Group order per example: by contribution (or α) for the target, descending; ties keep the lower index. */
export function groupOrder(r: SopResult, targets: Int32Array, by: 'weights' | 'contributions' = 'weights'): Int32Array[] {
  const { batch: B, numGroups: m, numOutputs: C } = r;
  const src = by === 'weights' ? r.weights : r.contributions;
  const orders: Int32Array[] = [];
  for (let b = 0; b < B; b++) {
    const idx = Array.from({ length: m }, (_, j) => j);
    idx.sort((x, y) => src[(b * m + y) * C + targets[b]] - src[(b * m + x) * C + targets[b]] || x - y);
    orders.push(Int32Array.from(idx));
  }
  return orders;
}

/** Union of the top-weighted groups (α descending) until at least ⌊keep·d⌋ features are covered → [B, d] 0/1. */
export function sopFeatureMasks(r: SopResult, targets: Int32Array, keep: number): Float32Array {
  const { batch: B, numGroups: m, numFeatures: d } = r;
  const need = Math.max(1, Math.floor(keep * d + 1e-6));
  const out = new Float32Array(B * d);
  const orders = groupOrder(r, targets, 'weights');
  for (let b = 0; b < B; b++) {
    let count = 0;
    for (const j of orders[b]) {
      if (count >= need) break;
      const mo = (b * m + j) * d;
      for (let i = 0; i < d; i++) {
        if (r.masks[mo + i] > 0 && out[b * d + i] === 0) {
          out[b * d + i] = 1;
          count++;
        }
      }
    }
  }
  return out;
}

/** `attributions_max`: the masked map of the single group with the largest contribution to the target → [B, d]. */
export function sopAttributionsMax(r: SopResult, targets: Int32Array): Float32Array {
  const { batch: B, numGroups: m, numFeatures: d, numOutputs: C } = r;
  const out = new Float32Array(B * d);
  const orders = groupOrder(r, targets, 'contributions');
  for (let b = 0; b < B; b++) {
    const j = orders[b][0];
    const w = r.contributions[(b * m + j) * C + targets[b]];
    for (let i = 0; i < d; i++) out[b * d + i] = r.masks[(b * m + j) * d + i] * w;
  }
  return out;
}

/** `flat_masks`: per feature, the rank (0 = largest contribution) of the first group containing it, -1 if none → [B, d]. */
export function sopFlatMasks(r: SopResult, targets: Int32Array): Int32Array {
  const { batch: B, numGroups: m, numFeatures: d } = r;
  const out = new Int32Array(B * d).fill(-1);
  const orders = groupOrder(r, targets, 'contributions');
  for (let b = 0; b < B; b++) {
    orders[b].forEach((j, rank) => {
      for (let i = 0; i < d; i++) if (r.masks[(b * m + j) * d + i] > 0 && out[b * d + i] < 0) out[b * d + i] = rank;
    });
  }
  return out;
}

/** SOP as a {@link FaithfulExplainer}: its own prediction and the groups that make it. */
export class SopExplainer implements FaithfulExplainer {
  readonly name = 'sop';
  readonly faithfulByConstruction = true;

  constructor(readonly model: SopModel) {}

  async explain(inputs: Inputs, options: ExplainOptions): Promise<Explanation> {
    const keep = options.keep ?? this.model.keep;
    const r = await this.model.predict(inputs, { keep, deletion: options.deletion });
    const targets = resolveTargets(r, options.target, options.labels, this.model.task);
    const { batch: B, numGroups: m, numOutputs: C } = r;
    const weights = new Float32Array(B * m);
    for (let b = 0; b < B; b++) for (let j = 0; j < m; j++) weights[b * m + j] = r.weights[(b * m + j) * C + targets[b]];
    options.onProgress?.(B, B);
    const explanation: Explanation = {
      outputs: r.output,
      numOutputs: C,
      attributions: sopAttributions(r, targets),
      numFeatures: r.numFeatures,
      targets,
      featureMasks: sopFeatureMasks(r, targets, keep),
      groups: { count: m, masks: r.masks, weights, scales: r.scales, outputs: r.groupOutputs },
      meta: { method: 'sop', evaluations: r.evaluations, keep, deletion: options.deletion ?? false },
    };
    if (options.allClasses) explanation.allClassAttributions = Float32Array.from(r.output);
    return explanation;
  }
}
