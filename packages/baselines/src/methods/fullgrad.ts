/**
 * FullGrad (Srinivas & Fleuret 2019). Input part: ψ(x ⊙ ∂f_c/∂x), ψ = abs then min-max per example, summed into
 * features. Bias part (optional): for every `biasLayers` entry {output, bias} — `output` an intermediate [B, K, h, w]
 * the backbone exposes (forward outputs + vjp wrt, as for gradcam), `bias` the layer's bias (a parameter name from
 * `backbone.parameters()` or the K numbers) — the map ψ(∂f_c/∂z ⊙ b) is summed over channels, resized onto the image
 * and added. Only 4-D (spatial) bias maps are supported, like the reference (non-spatial biases carry no location).
 * Default `biasLayers`: the backbone's `fullgradBiasLayers()` when it has one (the ONNX backbone lists every 2-D
 * Conv with a bias: {output: conv output, bias: bias initializer}), else none (input part only). `biasLayers: []`
 * turns the bias part off.
 * `postprocess: 'none'` returns the signed x ⊙ ∇x (+ signed bias maps). Score: raw logit (`output: 'logit'`).
 */
import { UserError, type AttributeOptions, type Attribution, type AttributionContext, type Attributor, type Inputs } from '@sop/core';
import { BatchRunner } from '../batching.js';
import { aggregate, choiceOption, finish, needsPrediction, resolveTargets, scoreModeOf } from '../common.js';
import { rowSizeOf, xData } from '../gradient-common.js';
import { mapsToImage, minMaxInPlace } from '../spatial.js';
import { floatX, softmax } from '../batching.js';

interface BiasLayer {
  output: string;
  bias: string | number[];
}

export const fullgrad: Attributor = {
  name: 'fullgrad',
  access: 'gradient',
  async attribute(inputs: Inputs, context: AttributionContext, options: AttributeOptions = {}): Promise<Attribution> {
    const runner = new BatchRunner(context, inputs, options);
    runner.requireVjp('fullgrad');
    floatX(inputs, "attributor 'fullgrad'");
    const bb = context.backbone;
    const own = (bb as { fullgradBiasLayers?(): BiasLayer[] }).fullgradBiasLayers;
    const layers = (options.biasLayers as BiasLayer[] | undefined) ?? (inputs.x.shape.length === 4 && own ? own.call(bb) : []);
    const post = choiceOption(options, 'postprocess', ['abs-minmax', 'none'] as const, 'abs-minmax');
    const mode = scoreModeOf(options, 'logit');
    const B = inputs.x.shape[0];
    const names = layers.map((l) => l.output);
    const fwd = needsPrediction(options) || mode === 'prob' ? await runner.forward(inputs) : null;
    const C = bb.info.outputDim;
    const targets = resolveTargets(options.target, options.labels, fwd ? fwd.output : null, B, C);
    const cot = new Float32Array(B * C);
    const p = fwd ? softmax(fwd.output.data, B, C) : null;
    for (let b = 0; b < B; b++) {
      const c = targets[b];
      if (mode === 'prob' && C > 1 && p) for (let j = 0; j < C; j++) cot[b * C + j] = p[b * C + c] * ((j === c ? 1 : 0) - p[b * C + j]);
      else cot[b * C + c] = 1;
    }
    const { grads } = await runner.vjpRows('fullgrad', inputs, cot, ['x', ...names]);
    const n = rowSizeOf(inputs);
    const x = xData(inputs);
    const attr = new Float32Array(B * n);
    for (let i = 0; i < attr.length; i++) attr[i] = x[i] * grads.x.data[i];
    if (post === 'abs-minmax') {
      for (let i = 0; i < attr.length; i++) attr[i] = Math.abs(attr[i]);
      for (let b = 0; b < B; b++) minMaxInPlace(attr, b * n, (b + 1) * n);
    }
    // one initializer at a time when the backbone can (parameters() copies every weight of the model)
    const one = (bb as { parameter?(name: string): { data: Float32Array } | undefined }).parameter;
    let params: Record<string, { data: Float32Array }> | undefined;
    const biasOf = (name: string): Float32Array | undefined => {
      if (one) return one.call(bb, name)?.data;
      params ??= bb.parameters?.();
      return params?.[name]?.data;
    };
    for (const l of layers) {
      const g = grads[l.output];
      if (g.shape.length !== 4 || inputs.x.shape.length !== 4) {
        throw new UserError(`fullgrad: bias layer '${l.output}' has shape [${g.shape.join(', ')}]; only 4-D maps on image inputs are supported`, 'list only convolutional [B, K, h, w] intermediates in biasLayers');
      }
      const [, K, h, w] = g.shape;
      const bias = typeof l.bias === 'string' ? biasOf(l.bias) : Float32Array.from(l.bias);
      if (!bias || bias.length !== K) {
        throw new UserError(`fullgrad: no bias of ${K} values for layer '${l.output}'`, 'set bias to a parameter name the backbone lists in parameters(), or to the K bias values');
      }
      const hw = h * w;
      const maps = new Float32Array(B * hw);
      const scratch = new Float32Array(post === 'abs-minmax' ? K * hw : 0);
      for (let b = 0; b < B; b++) biasMap(g.data, bias, b, K, hw, post === 'abs-minmax', maps, scratch);
      const img = mapsToImage(maps, B, h, w, inputs.x.shape);
      for (let i = 0; i < attr.length; i++) attr[i] += img[i];
    }
    const values = aggregate(context, attr, inputs);
    return finish('fullgrad', values, context.space.numFeatures, targets, runner, options, { biasLayers: names, postprocess: post, output: mode });
  },
};

/**
 * Example b's bias map, added into `maps` [B, h·w]: Σ_k ψ(∂f/∂z_k ⊙ b_k) with ψ = abs then min-max over all of the
 * example's K·h·w values (`absMinMax`), else the identity. `scratch` [K·h·w] holds the example's |∂f/∂z ⊙ b| between
 * the pass for the range and the pass for the sum (no [B, K, h, w] buffer); float32 rounding at the same steps as
 * materialising ∂f/∂z ⊙ b, ψ and the sum in float32 arrays, so the values are the same bit for bit.
 */
function biasMap(g: Float32Array, bias: Float32Array, b: number, K: number, hw: number, absMinMax: boolean, maps: Float32Array, scratch: Float32Array): void {
  const start = b * K * hw;
  const mo = b * hw;
  if (!absMinMax) {
    for (let k = 0; k < K; k++) {
      const bk = bias[k];
      const o = start + k * hw;
      for (let i = 0; i < hw; i++) maps[mo + i] += Math.fround(g[o + i] * bk);
    }
    return;
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (let k = 0; k < K; k++) {
    const bk = bias[k];
    const o = start + k * hw;
    const so = k * hw;
    for (let i = 0; i < hw; i++) {
      const v = Math.abs(Math.fround(g[o + i] * bk));
      scratch[so + i] = v;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  const r = hi - lo;
  // r ≤ 0 (a constant map): ψ is 0 everywhere and adds nothing
  if (!(r > 0)) return;
  for (let k = 0; k < K; k++) {
    const so = k * hw;
    for (let i = 0; i < hw; i++) maps[mo + i] += Math.fround((scratch[so + i] - lo) / r);
  }
}
