/**
 * Grad-CAM (Selvaraju et al. 2017) on an intermediate tensor of the backbone. The backbone must differentiate the
 * output w.r.t. it with `vjp(inputs, {cotangents: {output}, wrt: [layer]})` and return its value either in that
 * vjp's `outputs[layer]` (same pass as the gradient; the ONNX backbone does) or from
 * `forward(inputs, {outputs: [layer]})`.
 *
 * Which layer (first that applies):
 *   1. the attributor option `layer` (API: `gradcam.attribute(inputs, ctx, {layer: NAME})`);
 *   2. the backbone's `gradcamLayer()` method, when it has one. The ONNX backbone returns `backbone.gradcamLayer`
 *      from the config (so the CLI can pick it: `--set backbone.gradcamLayer=NAME`; `sop inspect MODEL.onnx` lists
 *      tensor names), else the last 4-D spatial tensor before global pooling (CNNs, e.g. '/relu3/Relu_output_0' of
 *      the digits CNN), else the token states [B, L, k] entering the last attention block (ViTs, e.g.
 *      '/blocks.1/norm1/LayerNormalization_output_0' of the shapes ViT; the last block's *output* tokens carry no
 *      gradient when the head reads the CLS token);
 *   3. the first of `backbone.info.extraOutputs` that is not hidden/embeddings/attention.
 *
 * Layouts: 4-D [B, K, h, w] (conv maps) or 3-D [B, T, K] (tokens; `skipTokens` leading tokens such as CLS are
 * dropped, default T − d when that is 0 or 1, and the remaining tokens are laid on the feature grid when they are
 * d, else on an s×s map when square). CAM = ReLU(Σ_k α_k A_k), α_k = mean gradient of channel k over the map. The
 * map goes to features directly when it matches the feature grid, else it is bilinearly resized onto the image and
 * summed per feature. Score: softmax probability of the target (`output: 'prob'`, default, as pytorch-grad-cam in
 * the reference) or 'logit'. No min-max scaling (ranking-invariant). Cost: 1 forward + 1 vjp row per example.
 */
import { UserError, type AttributeOptions, type Attribution, type AttributionContext, type Attributor, type Inputs } from '@sop/core';
import { BatchRunner, scoreCotangent } from '../batching.js';
import { aggregate, finish, resolveTargets, scoreModeOf, needsPrediction } from '../common.js';
import { mapsToImage } from '../spatial.js';
import { baselineKernels, camMapsKernel } from '../kernels/index.js';

/** Per-example maps [B, h·w] to feature values [B, d] (direct when the map matches the features, else via the image). */
export function mapsToFeatures(context: AttributionContext, inputs: Inputs, maps: Float32Array, h: number, w: number, what: string): Float32Array {
  const d = context.space.numFeatures;
  const B = inputs.x.shape[0];
  const grid = context.space.grid;
  if (h * w === d && (grid.length !== 2 || (grid[0] === h && grid[1] === w) || h === 1)) return maps;
  if (inputs.x.shape.length === 4) return aggregate(context, mapsToImage(maps, B, h, w, inputs.x.shape), inputs);
  throw new UserError(`${what}: a ${h}×${w} map does not match the ${d} features and the input is not an image`, 'choose a layer whose spatial size matches the feature grid');
}

/** A backbone that names its default GradCAM layer (e.g. OnnxBackbone). */
interface CamLayerSource {
  gradcamLayer?(): string | undefined | Promise<string | undefined>;
}

/** The layer: option `layer`, else the backbone's `gradcamLayer()`, else the first plain extra output. */
export async function pickLayer(bb: AttributionContext['backbone'], options: AttributeOptions): Promise<string | undefined> {
  if (options.layer !== undefined) {
    if (typeof options.layer !== 'string' || !options.layer) throw new UserError(`gradcam: option layer must be a tensor name, got ${JSON.stringify(options.layer)}`, 'set layer: NAME');
    return options.layer;
  }
  const own = await (bb as CamLayerSource).gradcamLayer?.();
  if (own) return own;
  return (bb.info.extraOutputs ?? []).find((n) => !['hidden', 'embeddings', 'attention', 'output'].includes(n));
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Σ_k mean(G_k)·A_k per example for [B, K, hw] gradients and activations, accumulated in float64; [B, hw]. */
export function camMaps(G: Float32Array, A: Float32Array, B: number, K: number, hw: number): Float32Array {
  const maps = new Float32Array(B * hw);
  const acc = new Float64Array(hw);
  for (let b = 0; b < B; b++) {
    acc.fill(0);
    for (let k = 0; k < K; k++) {
      const o = (b * K + k) * hw;
      let a = 0;
      for (let i = 0; i < hw; i++) a += G[o + i];
      a /= hw;
      if (a === 0) continue;
      for (let i = 0; i < hw; i++) acc[i] += a * A[o + i];
    }
    maps.set(acc, b * hw);
  }
  return maps;
}

export const gradcam: Attributor = {
  name: 'gradcam',
  access: 'gradient',
  async attribute(inputs: Inputs, context: AttributionContext, options: AttributeOptions = {}): Promise<Attribution> {
    const runner = new BatchRunner(context, inputs, options);
    runner.requireVjp('gradcam');
    const bb = context.backbone;
    // (no await when the option names the layer: one microtask less per call)
    const layer = typeof options.layer === 'string' && options.layer ? options.layer : await pickLayer(bb, options);
    if (!layer) {
      throw new UserError(
        `gradcam needs an intermediate layer, and backbone '${bb.name}' names none`,
        'set the attributor option layer: NAME (for an ONNX backbone: --set backbone.gradcamLayer=NAME, a 4-D conv map or [B, T, k] token tensor listed by `sop inspect MODEL.onnx`)',
      );
    }
    const mode = scoreModeOf(options, 'prob');
    const B = inputs.x.shape[0];
    // a layer the backbone lists as an extra output comes with the forward; otherwise (e.g. an ONNX intermediate
    // that is not exposed) from the vjp, which returns the value of every intermediate it differentiates
    const listed = (bb.info.extraOutputs ?? []).includes(layer);
    const fwd = await runner.forward(inputs, listed ? [layer] : undefined);
    const C = fwd.output.shape[1];
    const targets = resolveTargets(options.target, options.labels, needsPrediction(options) ? fwd.output : null, B, C);
    const cot = scoreCotangent(fwd.output.data, targets, B, C, mode);
    const { grads, outputs } = await runner.vjpRows('gradcam', inputs, cot, [layer]);
    const G = grads[layer];
    // the activation from the same pass as its gradient when the backbone returns it, else from a forward
    let A = outputs[layer] ?? fwd[layer];
    if (!A) {
      A = (await runner.forward(inputs, [layer]))[layer];
      if (!A) {
        throw new UserError(
          `backbone '${bb.name}' returned '${layer}' neither from vjp nor from forward`,
          `expose '${layer}' in info.extraOutputs / forward({outputs}) or pick another layer (known: ${(bb.info.extraOutputs ?? []).join(', ') || 'none'})`,
        );
      }
    }
    if (!sameShape(A.shape, G.shape)) {
      throw new UserError(`gradcam: '${layer}' has shape [${A.shape.join(', ')}] but its gradient [${G.shape.join(', ')}]`, 'make the backbone return the activation and gradient of the same tensor');
    }
    let h: number;
    let w: number;
    let K: number;
    let maps: Float32Array;
    if (A.shape.length === 4) {
      [, K, h, w] = A.shape;
      const wasm = baselineKernels();
      maps = wasm ? camMapsKernel(wasm, G.data, A.data, B, K, h * w) : camMaps(G.data, A.data, B, K, h * w);
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
