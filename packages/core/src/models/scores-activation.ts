import { Tensor, parameter, noGrad, mul, scale, softmax, result } from '../autograd/index.js';
import type { Rng } from '../rng.js';
import { InternalError, UserError } from '../errors.js';
import type { Backbone } from '../backbone.js';
import type { MlpBackbone } from './mlp.js';
import type { Inputs } from '../inputs.js';
import type { FloatTensor } from '../tensor.js';

export interface ScoresActivationOptions {
  /** Temperature T in softmax(s / T). Default 1. */
  temperature?: number;
  /** Multiply the weights by d so that the layer starts as the identity (a labelled deviation from the paper). */
  scaleByD?: boolean;
}

/**
 * ScoresActivation (methods §1, §9.9): y = x ⊙ w with w = softmax(s / T) (optionally × d), one learnable score per
 * input feature, s initialised at 0. Sits on the raw inputs before the first linear layer. The global ranking is
 * argsort(w), descending.
 */
export class ScoresActivation {
  readonly s: Tensor;
  readonly temperature: number;
  readonly scaleByD: boolean;

  constructor(readonly numFeatures: number, options: ScoresActivationOptions = {}) {
    this.temperature = options.temperature ?? 1;
    this.scaleByD = options.scaleByD ?? false;
    if (!(this.temperature > 0)) throw new UserError(`model.temperature: ${this.temperature} is not > 0`, 'use e.g. temperature: 1');
    this.s = parameter(new Float32Array(numFeatures), [numFeatures], 'scores.s');
  }

  /** w = softmax(s/T) (× d with scaleByD) as an autograd tensor [d]. */
  weightsTensor(): Tensor {
    const z = this.temperature === 1 ? this.s : scale(this.s, 1 / this.temperature);
    const w = softmax(z, -1);
    return this.scaleByD ? scale(w, this.numFeatures) : w;
  }

  /** Current weights w (a copy). */
  weights(): Float32Array {
    return noGrad(() => Float32Array.from(this.weightsTensor().data));
  }

  /** y = x ⊙ w for x [B, d]. */
  apply(x: Tensor): Tensor {
    if (x.shape[x.shape.length - 1] !== this.numFeatures) {
      throw new UserError(`scores-activation: inputs have ${x.shape[x.shape.length - 1]} features, the layer has ${this.numFeatures}`, 'use the data the model was trained on');
    }
    return mul(x, this.weightsTensor());
  }

  /** Features sorted by weight, descending (ties keep the lower index first). */
  ranking(names?: string[]): Array<{ feature: string; score: number }> {
    const w = this.weights();
    const order = Array.from(w.keys()).sort((a, b) => w[b] - w[a] || a - b);
    return order.map((i) => ({ feature: names?.[i] ?? `x${i}`, score: w[i] }));
  }

  parameterTensors(): Record<string, Tensor> {
    return { 'scores.s': this.s };
  }
}

/** ScoresActivation in front of an MLP, trained end to end. */
export class ScoresActivationModel {
  constructor(readonly layer: ScoresActivation, readonly mlp: MlpBackbone) {
    if (layer.numFeatures !== mlp.inputDim) throw new Error('ScoresActivationModel: layer size differs from the MLP input');
  }

  forwardTensor(x: Tensor, training = false, rng?: Rng): Tensor {
    return this.mlp.forwardTensor(this.layer.apply(x), training, rng).output;
  }

  predict(inputs: Inputs): FloatTensor {
    return noGrad(() => this.forwardTensor(this.mlp.flatten(inputs), false).toData());
  }

  parameterTensors(): Record<string, Tensor> {
    const out: Record<string, Tensor> = { ...this.layer.parameterTensors() };
    for (const [k, v] of Object.entries(this.mlp.parameterTensors())) out[`mlp.${k}`] = v;
    return out;
  }
}

/** Name prefix of fine-tuned backbone weights among the model's parameters (and in checkpoints). */
export const FINETUNE_PREFIX = 'backbone.';

/**
 * ScoresActivation in front of a frozen backbone that can differentiate itself (`backbone.vjp`, e.g. an ONNX model):
 * prediction = backbone(x ⊙ w), w = softmax(s/T) (× d with scaleByD), applied to every element of an input row
 * (d = its size; for tables, one weight per column). Training needs no autograd through the backbone:
 *   1. forward y = backbone(x ⊙ w); the task loss L(y) and its cotangent ∂L/∂y come from core's autograd;
 *   2. `backbone.vjp` w.r.t. its input gives ∂L/∂(x ⊙ w) [B, d]; then g_i = Σ_b x_bi ∂L/∂(x ⊙ w)_bi = ∂L/∂w_i;
 *   3. the returned loss is an autograd node whose backward hands g to w (so ∂L/∂s = softmax's Jacobian·g, i.e.
 *      w ⊙ (g − ⟨g, w⟩)/T without scaleByD) and the backbone's weight gradients to the fine-tuned weights.
 * Fine-tuned weights (`finetune`: initializer name → starting value) are parameters named `backbone.<name>`, fed
 * to every backbone call through `vjp({params})`; prediction with them runs through `vjp` too (a zero cotangent),
 * since `forward` always uses the stored weights.
 */
export class ScoresActivationBackboneModel {
  /** Fine-tuned backbone weights as trainable tensors, by initializer name. */
  readonly finetuned: Record<string, Tensor> = {};
  readonly rowShape: number[];

  constructor(
    readonly layer: ScoresActivation,
    readonly backbone: Backbone,
    rowShape: number[],
    finetune: Record<string, FloatTensor> = {},
  ) {
    this.rowShape = [...rowShape];
    const d = rowShape.reduce((a, b) => a * b, 1);
    if (d !== layer.numFeatures) throw new InternalError(`ScoresActivationBackboneModel: ${layer.numFeatures} scores for rows of ${d} values`);
    if (!backbone.vjp) {
      throw new UserError(
        `model scores-activation over backbone '${backbone.name}' needs its gradients (vjp), which it does not provide`,
        'use backbone: {use: onnx, ...} (differentiable through its graph) or backbone: {use: mlp} (trained jointly)',
      );
    }
    for (const [name, t] of Object.entries(finetune)) this.finetuned[name] = parameter(Float32Array.from(t.data), [...t.shape], `${FINETUNE_PREFIX}${name}`);
  }

  /** Current fine-tuned values as plain tensors (the `params` of every backbone call), or undefined when none. */
  params(): Record<string, FloatTensor> | undefined {
    const names = Object.keys(this.finetuned);
    if (names.length === 0) return undefined;
    return Object.fromEntries(names.map((n) => [n, this.finetuned[n].toData()]));
  }

  /** inputs with x replaced by x ⊙ w (w broadcast over each row). */
  weighted(inputs: Inputs, w: Float32Array): Inputs {
    const x = inputs.x;
    if (!(x.data instanceof Float32Array)) {
      throw new UserError('scores-activation: x is int64 (token ids); the layer scales float inputs', 'use float features (tables, images) or embeddings as x');
    }
    const d = w.length;
    if (x.shape.slice(1).reduce((a, b) => a * b, 1) !== d) {
      throw new UserError(`scores-activation: input rows have shape [${x.shape.slice(1).join(', ')}], the layer has ${d} scores`, 'use the data the model was trained on');
    }
    const out = new Float32Array(x.data.length);
    for (let i = 0; i < out.length; i++) out[i] = x.data[i] * w[i % d];
    return { ...inputs, x: { data: out, shape: [...x.shape] } };
  }

  private async outputOf(inputs: Inputs): Promise<FloatTensor> {
    const params = this.params();
    if (!params) return (await this.backbone.forward(inputs)).output;
    const B = inputs.x.shape[0];
    const C = this.backbone.info.outputDim;
    const r = await this.backbone.vjp!(inputs, { cotangents: { output: { data: new Float32Array(B * C), shape: [B, C] } }, wrt: [Object.keys(params)[0]], params });
    return r.outputs.output;
  }

  /** backbone(x ⊙ w) with the current scores and fine-tuned weights. */
  async predict(inputs: Inputs): Promise<FloatTensor> {
    return this.outputOf(this.weighted(inputs, this.layer.weights()));
  }

  /**
   * The training loss as an autograd scalar: value lossOf(backbone(x ⊙ w)), gradients flowing to the scores s and
   * the fine-tuned weights (computed with one forward and one vjp of the backbone).
   */
  async lossTensor(inputs: Inputs, lossOf: (output: Tensor) => Tensor): Promise<Tensor> {
    const wT = this.layer.weightsTensor();
    const w = wT.data;
    const xw = this.weighted(inputs, w);
    const y = await this.outputOf(xw);
    // the task loss and ∂L/∂y from core's autograd, on a leaf copy of the output
    const yT = new Tensor(Float32Array.from(y.data), [...y.shape], true);
    const inner = lossOf(yT);
    inner.backward();
    const cot = yT.grad ?? new Float32Array(y.data.length);
    const params = this.params();
    const names = Object.keys(this.finetuned);
    const r = await this.backbone.vjp!(xw, { cotangents: { output: { data: cot, shape: [...y.shape] } }, wrt: ['x', ...names], params });
    const gx = r.grads.x;
    if (!gx || gx.data.length !== xw.x.data.length) throw new InternalError(`backbone '${this.backbone.name}' returned no input gradient of the right size`);
    const d = w.length;
    const x = inputs.x.data as Float32Array;
    const g = new Float32Array(d);
    for (let i = 0; i < x.length; i++) g[i % d] += x[i] * gx.data[i];
    const weightGrads = names.map((n) => {
      const gw = r.grads[n];
      if (!gw || gw.data.length !== this.finetuned[n].size) throw new InternalError(`backbone '${this.backbone.name}' returned no gradient for weight '${n}'`);
      return gw.data;
    });
    const parents = [wT, ...names.map((n) => this.finetuned[n])];
    return result(Float32Array.from(inner.data), [...inner.shape], parents, (out) => {
      const s = out.grad![0];
      if (wT.requiresGrad) wT.accumulate(g.map((v) => v * s));
      names.forEach((n, k) => {
        const p = this.finetuned[n];
        if (p.requiresGrad) p.accumulate(weightGrads[k].map((v) => v * s));
      });
    });
  }

  parameterTensors(): Record<string, Tensor> {
    const out: Record<string, Tensor> = { ...this.layer.parameterTensors() };
    for (const [n, t] of Object.entries(this.finetuned)) out[`${FINETUNE_PREFIX}${n}`] = t;
    return out;
  }
}
