import { Tensor, parameter, noGrad, mul, scale, softmax } from '../autograd/index.js';
import type { Rng } from '../rng.js';
import { UserError } from '../errors.js';
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
