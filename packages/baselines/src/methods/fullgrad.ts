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
 * The default post-processing on image inputs runs in one WebAssembly SIMD call ({@link fullgradKernel}, float32; with
 * core's PatchesSpace the aggregation into features too, {@link fullgradFeaturesKernel});
 * {@link fullgradPostprocess} is its JavaScript reference and fallback.
 */
import { PatchesSpace, UserError, type AttributeOptions, type Attribution, type AttributionContext, type Attributor, type Inputs } from '@sop/core';
import { BatchRunner } from '../batching.js';
import { aggregate, choiceOption, finish, needsPrediction, resolveTargets, scoreModeOf } from '../common.js';
import { rowSizeOf, xData } from '../gradient-common.js';
import { addMapsToImage } from '../spatial.js';
import { floatX, scoreCotangent } from '../batching.js';
import { baselineKernels, fullgradFeaturesKernel, fullgradKernel, type FullGradLayer } from '../kernels/index.js';

interface BiasLayer {
  output: string;
  bias: string | number[];
}

/** Bias-map accumulators of {@link fullgradPostprocess}; grown on demand, reused across calls. */
let mapScratch = new Float32Array(0);

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
    const cot = fwd ? scoreCotangent(fwd.output.data, targets, B, C, mode) : scoreCotangent([], targets, B, C, 'logit');
    const { grads } = await runner.vjpRows('fullgrad', inputs, cot, ['x', ...names]);
    const n = rowSizeOf(inputs);
    const x = xData(inputs);
    // one initializer at a time when the backbone can (parameters() copies every weight of the model)
    const one = (bb as { parameter?(name: string): { data: Float32Array } | undefined }).parameter;
    let params: Record<string, { data: Float32Array }> | undefined;
    const biasOf = (name: string): Float32Array | undefined => {
      if (one) return one.call(bb, name)?.data;
      params ??= bb.parameters?.();
      return params?.[name]?.data;
    };
    const biasLayers: FullGradLayer[] = [];
    for (const l of layers) {
      const g = grads[l.output];
      if (g.shape.length !== 4 || inputs.x.shape.length !== 4) {
        throw new UserError(`fullgrad: bias layer '${l.output}' has shape [${g.shape.join(', ')}]; only 4-D maps on image inputs are supported`, 'list only convolutional [B, K, h, w] intermediates in biasLayers');
      }
      const [, K, h, w] = g.shape;
      const b = typeof l.bias === 'string' ? biasOf(l.bias) : Float32Array.from(l.bias);
      if (!b || b.length !== K) {
        throw new UserError(`fullgrad: no bias of ${K} values for layer '${l.output}'`, 'set bias to a parameter name the backbone lists in parameters(), or to the K bias values');
      }
      biasLayers.push({ g: g.data, bias: b, K, h, w });
    }
    const wasm = baselineKernels();
    let values: Float32Array;
    if (wasm && post === 'abs-minmax' && inputs.x.shape.length === 4) {
      // core's PatchesSpace (its own aggregate) on these images: aggregated in the same WebAssembly call
      const sp = context.space;
      const [, C, H, W] = inputs.x.shape;
      if (sp instanceof PatchesSpace && sp.aggregate === PatchesSpace.prototype.aggregate && sp.channels === C && sp.height === H && sp.width === W) {
        values = fullgradFeaturesKernel(wasm, x, grads.x.data, inputs.x.shape, biasLayers, sp.pixelFeature, sp.numFeatures);
      } else values = aggregate(context, fullgradKernel(wasm, x, grads.x.data, inputs.x.shape, biasLayers), inputs);
    } else values = aggregate(context, fullgradPostprocess(x, grads.x.data, B, n, inputs.x.shape, biasLayers, post === 'abs-minmax'), inputs);
    return finish('fullgrad', values, context.space.numFeatures, targets, runner, options, { biasLayers: names, postprocess: post, output: mode });
  },
};

/**
 * The JavaScript post-processing (the reference for {@link fullgradKernel}; also 'none'): ψ(x ⊙ ∇x) + Σ layers
 * resize(Σ_k ψ(∇z_k ⊙ b_k)), or the signed x ⊙ ∇x + Σ layers resize(Σ_k ∇z_k ⊙ b_k). Bias maps of layers of one
 * spatial size are summed at that size and resized onto the image once (bilinear resizing is linear); their
 * accumulators live in a module-level scratch buffer (used in this synchronous call only, never returned).
 */
export function fullgradPostprocess(x: Float32Array, gx: Float32Array, B: number, n: number, xShape: number[], layers: FullGradLayer[], absMinMax: boolean): Float32Array {
  const attr = inputPart(x, gx, B, n, absMinMax);
  const bySize = new Map<number, { h: number; w: number; maps: Float32Array }>();
  let used = 0;
  for (const { g, bias, K, h, w } of layers) {
    const key = h * 65536 + w;
    let acc = bySize.get(key);
    if (!acc) {
      const size = B * h * w;
      if (mapScratch.length < used + size) {
        const grown = new Float32Array(Math.max(2 * mapScratch.length, used + size));
        grown.set(mapScratch.subarray(0, used));
        for (const a of bySize.values()) a.maps = grown.subarray(a.maps.byteOffset / 4, a.maps.byteOffset / 4 + a.maps.length);
        mapScratch = grown;
      }
      const maps = mapScratch.subarray(used, used + size);
      maps.fill(0);
      used += size;
      bySize.set(key, (acc = { h, w, maps }));
    }
    if (absMinMax) addAbsMinMaxMaps(g, bias, B, K, h * w, acc.maps);
    else addSignedMaps(g, bias, B, K, h * w, acc.maps);
  }
  for (const { h, w, maps } of bySize.values()) addMapsToImage(maps, B, h, w, xShape, attr);
  return attr;
}

/** x ⊙ ∇x [B, n], or ψ(x ⊙ ∇x) (abs, then min-max per example; a constant example becomes 0) with `absMinMax`. */
function inputPart(x: Float32Array, g: Float32Array, B: number, n: number, absMinMax: boolean): Float32Array {
  const attr = new Float32Array(B * n);
  if (!absMinMax) {
    for (let i = 0; i < B * n; i++) attr[i] = x[i] * g[i];
    return attr;
  }
  for (let b = 0; b < B; b++) {
    const o = b * n;
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = o; i < o + n; i++) {
      const v = Math.abs(Math.fround(x[i] * g[i]));
      attr[i] = v;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const r = hi - lo;
    if (!(r > 0)) attr.fill(0, o, o + n);
    else for (let i = o; i < o + n; i++) attr[i] = (attr[i] - lo) / r;
  }
  return attr;
}

/** maps [B, h·w] += Σ_k ∂f/∂z_k ⊙ b_k (signed, `postprocess: 'none'`). */
function addSignedMaps(g: Float32Array, bias: Float32Array, B: number, K: number, hw: number, maps: Float32Array): void {
  for (let b = 0; b < B; b++) {
    const mo = b * hw;
    for (let k = 0; k < K; k++) {
      const bk = bias[k];
      const o = (b * K + k) * hw;
      for (let i = 0; i < hw; i++) maps[mo + i] += g[o + i] * bk;
    }
  }
}

/**
 * maps [B, h·w] += Σ_k ψ(∂f/∂z_k ⊙ b_k), ψ = abs then min-max over all of the example's K·h·w values. As the min-max is
 * affine, Σ_k (v_k − lo)/(hi − lo) = (Σ_k v_k − K·lo)/(hi − lo): one pass per example sums |∂f/∂z ⊙ b| over channels
 * pixel by pixel (the sum stays in a register; channel-strided reads of an L1-sized block) while tracking lo and hi,
 * then one division per pixel. A constant map (hi = lo) adds nothing (ψ = 0).
 */
function addAbsMinMaxMaps(g: Float32Array, bias: Float32Array, B: number, K: number, hw: number, maps: Float32Array): void {
  const sum = new Float64Array(hw);
  const absBias = new Float64Array(K);
  for (let k = 0; k < K; k++) absBias[k] = Math.abs(bias[k]);
  for (let b = 0; b < B; b++) {
    const base = b * K * hw;
    let lo = Infinity;
    let hi = 0; // every value is ≥ 0
    for (let i = 0; i < hw; i++) {
      let s = 0;
      for (let k = 0, o = base + i; k < K; k++, o += hw) {
        const v = Math.abs(g[o]) * absBias[k];
        s += v;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      sum[i] = s;
    }
    const r = hi - lo;
    if (!(r > 0)) continue;
    const inv = 1 / r;
    const klo = K * lo;
    const mo = b * hw;
    for (let i = 0; i < hw; i++) maps[mo + i] += (sum[i] - klo) * inv;
  }
}
