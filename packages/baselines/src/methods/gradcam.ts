/**
 * Grad-CAM (Selvaraju et al. 2017) on an intermediate tensor the backbone exposes by name. The backbone must (1)
 * return it from `forward(inputs, {outputs: [layer]})` and (2) differentiate the output w.r.t. it with
 * `vjp(inputs, {cotangents: {output}, wrt: [layer]})`. Layer: option `layer`, else the first of
 * `backbone.info.extraOutputs` that is not hidden/embeddings/attention. Layouts: 4-D [B, K, h, w] (conv maps) or 3-D [B, T, K] (tokens; `skipTokens` leading
 * tokens such as CLS are dropped, default T − d when that is 0 or 1, and a square token count is read as an s×s map).
 * CAM = ReLU(Σ_k α_k A_k), α_k = mean gradient of channel k. The map goes to features directly when it matches the
 * feature grid, else it is bilinearly resized onto the image and summed per feature. Score: softmax probability of
 * the target (`output: 'prob'`, default, as pytorch-grad-cam in the reference) or 'logit'. No min-max scaling
 * (ranking-invariant). Cost: 1 forward + 1 vjp row per example.
 */
import { UserError, type AttributeOptions, type Attribution, type AttributionContext, type Attributor, type Inputs } from '@sop/core';
import { BatchRunner, softmax } from '../batching.js';
import { aggregate, finish, resolveTargets, scoreModeOf, needsPrediction } from '../common.js';
import { mapsToImage } from '../spatial.js';

/** Per-example maps [B, h·w] to feature values [B, d] (direct when the map matches the features, else via the image). */
export function mapsToFeatures(context: AttributionContext, inputs: Inputs, maps: Float32Array, h: number, w: number, what: string): Float32Array {
  const d = context.space.numFeatures;
  const B = inputs.x.shape[0];
  const grid = context.space.grid;
  if (h * w === d && (grid.length !== 2 || (grid[0] === h && grid[1] === w) || h === 1)) return maps;
  if (inputs.x.shape.length === 4) return aggregate(context, mapsToImage(maps, B, h, w, inputs.x.shape), inputs);
  throw new UserError(`${what}: a ${h}×${w} map does not match the ${d} features and the input is not an image`, 'choose a layer whose spatial size matches the feature grid');
}

export const gradcam: Attributor = {
  name: 'gradcam',
  access: 'gradient',
  async attribute(inputs: Inputs, context: AttributionContext, options: AttributeOptions = {}): Promise<Attribution> {
    const runner = new BatchRunner(context, inputs, options);
    runner.requireVjp('gradcam');
    const bb = context.backbone;
    const layer = (options.layer as string | undefined) ?? (bb.info.extraOutputs ?? []).find((n) => !['hidden', 'embeddings', 'attention', 'output'].includes(n));
    if (!layer) {
      throw new UserError(`gradcam needs an intermediate layer, and backbone '${bb.name}' exposes none`, 'set the attributor option layer: NAME to a 4-D intermediate the backbone returns from forward({outputs: [NAME]}) and differentiates with vjp({wrt: [NAME]})');
    }
    const mode = scoreModeOf(options, 'prob');
    const B = inputs.x.shape[0];
    const fwd = await runner.forward(inputs, [layer]);
    const A = fwd[layer];
    if (!A) throw new UserError(`backbone '${bb.name}' did not return '${layer}' from forward`, `expose '${layer}' in info.extraOutputs / forward({outputs}) or pick another layer (known: ${(bb.info.extraOutputs ?? []).join(', ') || 'none'})`);
    const C = fwd.output.shape[1];
    const targets = resolveTargets(options.target, options.labels, needsPrediction(options) ? fwd.output : null, B, C);
    const cot = new Float32Array(B * C);
    const p = softmax(fwd.output.data, B, C);
    for (let b = 0; b < B; b++) {
      const c = targets[b];
      if (mode === 'prob' && C > 1) for (let j = 0; j < C; j++) cot[b * C + j] = p[b * C + c] * ((j === c ? 1 : 0) - p[b * C + j]);
      else cot[b * C + c] = 1;
    }
    const { grads } = await runner.vjpRows('gradcam', inputs, cot, [layer]);
    const G = grads[layer];
    let h: number;
    let w: number;
    let K: number;
    let maps: Float32Array;
    if (A.shape.length === 4) {
      [, K, h, w] = A.shape;
      const hw = h * w;
      maps = new Float32Array(B * hw);
      for (let b = 0; b < B; b++) {
        for (let k = 0; k < K; k++) {
          const o = (b * K + k) * hw;
          let a = 0;
          for (let i = 0; i < hw; i++) a += G.data[o + i];
          a /= hw;
          for (let i = 0; i < hw; i++) maps[b * hw + i] += a * A.data[o + i];
        }
      }
    } else if (A.shape.length === 3) {
      const T = A.shape[1];
      K = A.shape[2];
      const d = context.space.numFeatures;
      const skip = typeof options.skipTokens === 'number' ? options.skipTokens : T - d === 1 || T - d === 0 ? T - d : 0;
      const n = T - skip;
      const s = Math.round(Math.sqrt(n));
      if (n === d) [h, w] = context.space.grid.length === 2 ? context.space.grid : [1, n];
      else if (s * s === n) [h, w] = [s, s];
      else [h, w] = [1, n];
      maps = new Float32Array(B * n);
      for (let b = 0; b < B; b++) {
        for (let k = 0; k < K; k++) {
          let a = 0;
          for (let t = skip; t < T; t++) a += G.data[(b * T + t) * K + k];
          a /= n;
          for (let t = skip; t < T; t++) maps[b * n + t - skip] += a * A.data[(b * T + t) * K + k];
        }
      }
    } else {
      throw new UserError(`gradcam: layer '${layer}' has shape [${A.shape.join(', ')}]; expected [B, K, h, w] or [B, T, K]`, 'pick a convolutional map or a token-state layer');
    }
    for (let i = 0; i < maps.length; i++) if (maps[i] < 0) maps[i] = 0;
    const values = mapsToFeatures(context, inputs, maps, h, w, 'gradcam');
    return finish('gradcam', values, context.space.numFeatures, targets, runner, options, { layer, output: mode, mapShape: [h, w] });
  },
};
