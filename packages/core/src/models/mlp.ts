import { existsSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { Backbone, BackboneContext, BackboneFactory, BackboneInfo, BackboneOptions, BackboneOutputs, ForwardOptions } from '../backbone.js';
import type { Inputs } from '../inputs.js';
import { Rng } from '../rng.js';
import { UserError } from '../errors.js';
import { sizeOf, type FloatTensor } from '../tensor.js';
import {
  Tensor,
  parameter,
  noGrad,
  add,
  matmul,
  transpose,
  relu,
  gelu,
  tanh,
  dropout,
  xavierUniform,
} from '../autograd/index.js';
import { simdGemmOnePass } from '../autograd/gemm.js';
import { kernels, DenseStack } from '../kernels/index.js';
import { loadSafetensors } from '../train/safetensors.js';

export type Activation = 'relu' | 'gelu' | 'tanh';

export interface MlpOptions {
  inputDim: number;
  outputDim: number;
  /** Hidden layer widths; the last one is the `hidden` output. Default [64, 64]. */
  hidden?: number[];
  activation?: Activation;
  /** Dropout probability after each hidden activation (training only). Default 0. */
  dropout?: number;
  seed?: number;
}

/** Output of the autograd-level forward. */
export interface MlpTensors {
  output: Tensor;
  /** Last hidden activation [B, k] (absent when there are no hidden layers). */
  hidden?: Tensor;
}

/**
 * Built-in multilayer perceptron: Linear → act → (dropout) → … → Linear. Weights use the PyTorch layout
 * (`layers.i.weight` [out, in], `layers.i.bias` [out]), so `classifierWeight` is the last layer's weight [C, k].
 * Inputs of any shape are flattened per row ([B, C, H, W] → [B, C·H·W]).
 */
export class MlpBackbone implements Backbone {
  readonly name = 'mlp';
  readonly info: BackboneInfo;
  readonly capabilities = { vjp: false, hidden: true, embeddings: false };
  readonly inputDim: number;
  readonly outputDim: number;
  readonly hiddenSizes: number[];
  readonly activation: Activation;
  readonly dropoutP: number;
  /** Weights [out, in] and biases [out] per layer, as autograd parameters. */
  readonly weights: Tensor[] = [];
  readonly biases: Tensor[] = [];
  /** True once weights were trained or loaded (SOP over an untrained MLP fits it first). */
  trained = false;
  /** Transposed weights [in, out], cached while the network is frozen (no optimizer can change them). */
  private transposed: Tensor[] | null = null;
  /** The frozen network's layers in a kernel instance of their own (see forwardKernel); null: not built (or none). */
  private stack: DenseStack | null = null;

  constructor(options: MlpOptions) {
    this.inputDim = options.inputDim;
    this.outputDim = options.outputDim;
    this.hiddenSizes = [...(options.hidden ?? [64, 64])];
    this.activation = options.activation ?? 'relu';
    this.dropoutP = options.dropout ?? 0;
    if (!['relu', 'gelu', 'tanh'].includes(this.activation)) {
      throw new UserError(`backbone.activation: unknown activation '${this.activation}'`, 'use relu, gelu or tanh');
    }
    if (!(this.dropoutP >= 0 && this.dropoutP < 1)) throw new UserError(`backbone.dropout: ${this.dropoutP} is not in [0, 1)`, 'use e.g. dropout: 0.1');
    for (const h of this.hiddenSizes) {
      if (!Number.isInteger(h) || h < 1) throw new UserError(`backbone.hidden: layer width ${h} is not a positive integer`, 'use e.g. hidden: [64, 64]');
    }
    const rng = new Rng(options.seed ?? 0);
    const dims = [this.inputDim, ...this.hiddenSizes, this.outputDim];
    for (let l = 0; l + 1 < dims.length; l++) {
      const w = xavierUniform([dims[l + 1], dims[l]], rng);
      this.weights.push(parameter(w.data, [dims[l + 1], dims[l]], `layers.${l}.weight`));
      this.biases.push(parameter(new Float32Array(dims[l + 1]), [dims[l + 1]], `layers.${l}.bias`));
    }
    const k = this.hiddenSizes.length ? this.hiddenSizes[this.hiddenSizes.length - 1] : undefined;
    const last = this.weights[this.weights.length - 1];
    this.info = {
      outputDim: this.outputDim,
      hiddenDim: k,
      inputShape: [this.inputDim],
      // a live view: it always shows the current weights
      classifierWeight: k !== undefined ? { data: last.data, shape: [...last.shape] } : undefined,
    };
  }

  /** Trainable parameters by name (autograd tensors; also valid FloatTensors). */
  parameterTensors(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (let l = 0; l < this.weights.length; l++) {
      out[`layers.${l}.weight`] = this.weights[l];
      out[`layers.${l}.bias`] = this.biases[l];
    }
    return out;
  }

  parameters(): Record<string, FloatTensor> {
    return this.parameterTensors();
  }

  /** Freeze or unfreeze the weights (frozen weights record no graph). */
  setTrainable(trainable: boolean): void {
    this.transposed = null;
    this.stack = null;
    for (const p of Object.values(this.parameterTensors())) {
      p.requiresGrad = trainable;
      if (!trainable) p.grad = null;
    }
  }

  /** Copy weights in (shapes must match). Marks the network as trained. */
  loadWeights(tensors: Record<string, FloatTensor>, prefix = ''): void {
    for (const [name, p] of Object.entries(this.parameterTensors())) {
      const t = tensors[prefix + name];
      if (!t) throw new UserError(`MLP weights: tensor '${prefix + name}' is missing`, 'the weights come from a different architecture; check backbone.hidden and the data');
      if (t.shape.join(',') !== p.shape.join(',')) {
        throw new UserError(
          `MLP weights: '${prefix + name}' has shape [${t.shape}] but the network needs [${p.shape}]`,
          'use the same backbone.hidden and data as the run that produced the weights',
        );
      }
      p.data.set(t.data);
    }
    this.transposed = null;
    this.stack = null;
    this.trained = true;
  }

  /** Flatten `x` [B, ...] to a [B, inputDim] autograd tensor (no copy). */
  flatten(inputs: Inputs): Tensor {
    const x = inputs.x;
    if (!(x.data instanceof Float32Array)) {
      throw new UserError('the mlp backbone needs float inputs, got int64 (token ids)', 'use an hf or onnx text backbone for text data');
    }
    const b = x.shape[0];
    const row = sizeOf(x.shape.slice(1));
    if (row !== this.inputDim) {
      throw new UserError(`mlp backbone: input rows have ${row} values but the network was built for ${this.inputDim}`, 'use the same data (and image size) as the run that produced the weights');
    }
    return new Tensor(x.data, [b, row]);
  }

  /**
   * Autograd-level forward on a [B, inputDim] tensor. `training` enables dropout, drawn from `rng`.
   */
  forwardTensor(x: Tensor, training = false, rng?: Rng): MlpTensors {
    let h = x;
    let hidden: Tensor | undefined;
    const last = this.weights.length - 1;
    const frozen = this.weights.every((w) => !w.requiresGrad);
    if (frozen && !this.transposed) this.transposed = noGrad(() => this.weights.map((w) => transpose(w)));
    for (let l = 0; l <= last; l++) {
      const wt = frozen ? this.transposed![l] : transpose(this.weights[l]);
      h = add(matmul(h, wt), this.biases[l]);
      if (l < last) {
        h = this.activation === 'relu' ? relu(h) : this.activation === 'gelu' ? gelu(h) : tanh(h);
        if (l === last - 1) hidden = h;
        if (training && this.dropoutP > 0) {
          if (!rng) throw new Error('MlpBackbone.forwardTensor: training with dropout needs an rng');
          h = dropout(h, this.dropoutP, rng, true);
        }
      }
    }
    return { output: h, hidden };
  }

  async forward(inputs: Inputs, options: ForwardOptions = {}): Promise<BackboneOutputs> {
    return this.forwardSync(inputs, options);
  }

  /**
   * Frozen ReLU network at inference: all layers in one WebAssembly pass per block of rows (dense_rows: product, bias
   * and ReLU fused, the weights copied once into a kernel instance of the network's own instead of packed per call;
   * about 3× faster than op by op). Used only where the op-by-op path runs the SIMD gemm in one pass for every layer
   * (simdGemmOnePass), so both give the same bits; undefined otherwise (and without the kernels, or with SOP_WASM=0),
   * and then the caller runs op by op.
   */
  private forwardKernel(x: Tensor, wantHidden: boolean, into?: ForwardOptions['into']): BackboneOutputs | undefined {
    if (this.activation !== 'relu' || this.weights.some((w) => w.requiresGrad) || !kernels()) return undefined;
    const n = x.shape[0];
    const last = this.weights.length - 1;
    if (n === 0 || (wantHidden && last === 0)) return undefined;
    let weightFloats = 0;
    for (const w of this.weights) {
      const [N, k] = w.shape;
      if (!simdGemmOnePass(n, k, N)) return undefined;
      weightFloats += k * N + N;
    }
    // the weights stay in the kernel instance's memory while the network is frozen: very large networks go op by op
    if (weightFloats > KERNEL_MAX_WEIGHT_FLOATS) return undefined;
    if (!this.stack) {
      if (!this.transposed) this.transposed = noGrad(() => this.weights.map((w) => transpose(w)));
      this.stack = DenseStack.create(this.weights.map((w, l) => ({ W: this.transposed![l].data, b: this.biases[l].data, k: w.shape[1], N: w.shape[0], act: l < last ? 1 : 0 })));
      if (!this.stack) return undefined;
    }
    const k = this.hiddenSizes[this.hiddenSizes.length - 1];
    const dest = (a: Float32Array | undefined, len: number): Float32Array | undefined => (a && a.length === len ? a : undefined);
    const [output, hidden] = this.stack.run(x.data, n, wantHidden ? [last, last - 1] : [last], [dest(into?.output, n * this.outputDim), wantHidden ? dest(into?.hidden, n * k) : undefined]);
    const out: BackboneOutputs = { output: { data: output, shape: [n, this.outputDim] } };
    if (hidden) out.hidden = { data: hidden, shape: [n, k] };
    return out;
  }

  /** Synchronous inference forward (no graph). */
  forwardSync(inputs: Inputs, options: ForwardOptions = {}): BackboneOutputs {
    const wanted = options.outputs ?? [];
    for (const name of wanted) {
      if (name !== 'hidden' && name !== 'output') {
        throw new UserError(`the mlp backbone has no output named '${name}'`, "ask for 'hidden' (the last hidden layer) or nothing");
      }
    }
    const x = this.flatten(inputs);
    const fast = this.forwardKernel(x, wanted.includes('hidden'), options.into);
    if (fast) return fast;
    return noGrad(() => {
      const r = this.forwardTensor(x, false);
      const out: BackboneOutputs = { output: r.output.toData() };
      if (wanted.includes('hidden')) {
        if (!r.hidden) throw new UserError('this mlp has no hidden layers, so it exposes no hidden state', 'add hidden layers (backbone.hidden)');
        out.hidden = r.hidden.toData();
      }
      return out;
    });
  }
}

/** Largest network (weights and biases, float32 values: 64 MiB) the kernel path keeps in its own memory. */
const KERNEL_MAX_WEIGHT_FLOATS = 1 << 24;

/** Where an MLP's weights live in a run folder. */
export const MLP_WEIGHTS_FILE = 'backbone.safetensors';

/** Resolve `weights:` (a run folder or a .safetensors file) to the weights file. */
export function resolveMlpWeights(weights: string, baseDir: string): string {
  const p = isAbsolute(weights) ? weights : resolve(baseDir, weights);
  if (existsSync(p) && statSync(p).isDirectory()) {
    const f = join(p, MLP_WEIGHTS_FILE);
    if (!existsSync(f)) throw new UserError(`backbone.weights: ${p} has no ${MLP_WEIGHTS_FILE}`, 'point weights: at the folder of a finished sop train run that trained the MLP');
    return f;
  }
  if (!existsSync(p)) throw new UserError(`backbone.weights: ${p} does not exist`, 'point weights: at a sop train run folder or a .safetensors file (relative paths start at the config file)');
  return p;
}

function numberList(v: unknown, what: string): number[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'number')) throw new UserError(`${what}: expected a list of numbers, found ${JSON.stringify(v)}`, `write e.g. ${what.split('.').pop()}: [64, 64]`);
  return v as number[];
}

/** `backbone: {use: mlp, hidden: [64, 64], activation: relu|gelu|tanh, dropout: 0, weights?: RUN_DIR}` */
export const mlpBackboneFactory: BackboneFactory = {
  name: 'mlp',
  async create(options: BackboneOptions, context: BackboneContext): Promise<Backbone> {
    if (!context.inputShape || !context.numOutputs) {
      throw new UserError('the mlp backbone needs the data to know its input and output sizes', 'load a data set before building the mlp backbone');
    }
    const seed = typeof options.seed === 'number' ? options.seed : context.seed;
    const mlp = new MlpBackbone({
      inputDim: sizeOf(context.inputShape),
      outputDim: context.numOutputs,
      hidden: numberList(options.hidden, 'backbone.hidden'),
      activation: (options.activation as Activation | undefined) ?? 'relu',
      dropout: typeof options.dropout === 'number' ? options.dropout : 0,
      seed,
    });
    if (typeof options.weights === 'string') mlp.loadWeights(loadSafetensors(resolveMlpWeights(options.weights, options.baseDir)).tensors);
    else if (options.weights !== undefined) throw new UserError('backbone.weights: expected a path', 'set weights: to a sop train run folder');
    return mlp;
  },
};
