import type { Inputs } from './inputs.js';
import type { DatasetSplit } from './dataset.js';
import type { FloatTensor, TensorData } from './tensor.js';

/** Named outputs of a backbone forward. `output` is required. */
export interface BackboneOutputs {
  /** Logits or regression outputs [B, C]. */
  output: FloatTensor;
  /** Pooled hidden state [B, k], when the backbone exposes one. */
  hidden?: FloatTensor;
  /** Per-feature states [B, d, k], when the backbone exposes them. */
  embeddings?: FloatTensor;
  /** Anything else requested by name (exposed intermediates, attention maps). */
  [name: string]: FloatTensor | undefined;
}

export interface BackboneCapabilities {
  /** Can compute vector-Jacobian products (gradients). */
  vjp: boolean;
  hidden: boolean;
  embeddings: boolean;
}

export interface BackboneInfo {
  /** Number of outputs C. */
  outputDim: number;
  hiddenDim?: number;
  embeddingDim?: number;
  /** Shape of one input row (without batch), when known ahead. */
  inputShape?: number[];
  /** A classifier weight matrix [C, k] usable to initialise SOP's selector queries. */
  classifierWeight?: FloatTensor;
  /** Names of extra tensors that `forward({outputs})` can return. */
  extraOutputs?: string[];
}

export interface ForwardOptions {
  /** Which optional outputs to compute: 'hidden', 'embeddings', or exposed names. Default: just `output`. */
  outputs?: string[];
  /**
   * Optional destinations for `output` / `hidden` (row-major, exactly rows × width values): a backbone may write the
   * result there and return that very array as the output's `data`, saving the caller a copy. Backbones are free to
   * ignore it (callers compare identity and copy otherwise).
   */
  into?: { output?: Float32Array; hidden?: Float32Array };
}

export interface VjpRequest {
  /** Cotangent for the `output` (and optionally other named outputs), same shape as the forward result. */
  cotangents: { output?: FloatTensor; [name: string]: FloatTensor | undefined };
  /** What to differentiate with respect to: input keys (default ['x']) and/or parameter names. */
  wrt?: string[];
  /** Parameter values to use instead of the stored ones (for fine-tuning). */
  params?: Record<string, FloatTensor>;
}

export interface VjpResult {
  outputs: BackboneOutputs;
  /** Gradient per `wrt` name, shaped like that input/parameter. */
  grads: Record<string, FloatTensor>;
}

/**
 * A frozen (or fine-tunable) model: batched async function from inputs to named outputs. It chunks to its own
 * `maxBatch`; callers hand it as many rows as they have.
 */
export interface Backbone {
  readonly name: string;
  readonly info: BackboneInfo;
  readonly capabilities: BackboneCapabilities;
  forward(inputs: Inputs, options?: ForwardOptions): Promise<BackboneOutputs>;
  /**
   * Tokenizer-owning backbones (transformers.js text models) turn a split's raw texts into inputs
   * (`x` = input_ids [N, L] int64, `attention_mask`, `token_type_ids`), and rationale spans into feature masks.
   */
  encode?(split: DatasetSplit): Promise<{ inputs: Inputs; featureMasks?: Float32Array }>;
  vjp?(inputs: Inputs, request: VjpRequest): Promise<VjpResult>;
  /** Trainable parameters (name → tensor), for backbones that can be trained/fine-tuned in core (e.g. the MLP). */
  parameters?(): Record<string, FloatTensor>;
  dispose?(): Promise<void>;
}

export interface BackboneOptions {
  [key: string]: unknown;
  use: string;
  baseDir: string;
}

/** Factory for a backbone plugin (`backbone: {use: NAME}`). `context` carries the data set so e.g. the MLP can size itself. */
export interface BackboneFactory {
  readonly name: string;
  create(options: BackboneOptions, context: BackboneContext): Promise<Backbone>;
}

export interface BackboneContext {
  /** One example's primary input shape and dtype, from the data. */
  inputShape?: number[];
  numOutputs?: number;
  seed: number;
}

export type { TensorData };
