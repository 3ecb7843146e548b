import type { Backbone } from '../backbone.js';
import type { FeatureSpace } from '../feature-space.js';
import type { Masker } from '../masker.js';
import type { Inputs } from '../inputs.js';
import type { Task } from '../dataset.js';
import { Rng } from '../rng.js';
import { UserError } from '../errors.js';
import { sliceRows, type FloatTensor, type TensorData } from '../tensor.js';
import {
  Tensor,
  parameter,
  noGrad,
  add,
  mul,
  scale,
  matmul,
  matmulNT,
  reshape,
  sum,
  sparsemax,
  indexSelect,
  concat,
  blur,
  topkMass,
  xavierUniform,
  normalInit,
  eye,
} from '../autograd/index.js';

/** `model: {use: sop, ...}` options (methods §2, §9). */
export interface SopOptions {
  /** m: number of groups per prediction. Default min(20, d). */
  groups?: number;
  /** k: fraction of features per group (changeable at inference). Default 0.2. */
  keep?: number;
  /** Generator heads (trained one after another, all used at inference). Default 1. */
  heads?: number;
  /** 'even' (fixed evenly spaced query features, default) or 'random' (m random queries per training step). */
  queries?: 'even' | 'random';
  /** Generator embeddings: 'projection' (linear projection of raw feature values + position embedding, default) or 'backbone' (the backbone's `embeddings` output, frozen). */
  embeddings?: 'projection' | 'backbone';
  /** Width of the projection embeddings and of the generator's query/key space. Default 32. */
  embedDim?: number;
  /** Learned position embedding added to the projection embeddings. Default true. */
  positionEmbedding?: boolean;
  /** γ_g. Default 1/√embedDim (the reference has no 1/√d factor but uses 0.06 at width 768). */
  groupGenScale?: number;
  /** γ_s. Default 1. */
  groupSelScale?: number;
  /** Gaussian blur of the generator's attention logits over the feature grid; off by default. */
  blur?: { kernel: number; sigma: number } | false;
  /** Rows of masked inputs per backbone call. Default 256. */
  maskBatchSize?: number;
  /** Selector keys: 'hidden' (backbone's pooled state), 'output' (the group's output vector) or 'auto' (default: hidden when the backbone exposes it and has a classifier weight matrix). */
  selectorKeys?: 'auto' | 'hidden' | 'output';
  seed?: number;
}

export interface SopContext {
  backbone: Backbone;
  space: FeatureSpace;
  masker: Masker;
  task: Task;
  numOutputs: number;
  /** A few example inputs, to size the feature-value projection. */
  sample: Inputs;
}

export interface SopForwardOptions {
  /** Override k for this call. */
  keep?: number;
  /** Build each group from the bottom-k features of its query (deletion curves). */
  deletion?: boolean;
  /** Training: use only this head (and its queries); omitted: all heads (inference). */
  head?: number;
  /** Random queries (training with queries: random). */
  rng?: Rng;
  /** Record a graph (training). Default false. */
  grad?: boolean;
}

/** Autograd-level result of one SOP forward (B examples, m groups, d features, C outputs). */
export interface SopTensors {
  /** y [B, C] = Σ_j contributions. */
  output: Tensor;
  /** α ⊙ ẑ [B, m, C]. */
  contributions: Tensor;
  /** α [B, m, C] (sparsemax over groups per class). */
  weights: Tensor;
  /** ẑ = c·z [B, m, C]. */
  scaledOutputs: Tensor;
  /** c [B, m]. */
  scales: Tensor;
  /** Generator attention a [B, m, d] (values only: the generator's gradient path is `scales`). */
  attention: Tensor;
  /** Binary group masks M [B, m, d]. */
  masks: Float32Array;
  /** Backbone outputs z on each group [B, m, C]. */
  rawOutputs: Float32Array;
  /** Pooled hidden states h_j [B, m, k] when the backbone exposes them. */
  hidden?: Float32Array;
  /** Query feature of each group [m]. */
  queries: Int32Array;
  /** Head of each group [m]. */
  heads: Int32Array;
  /** Backbone rows evaluated. */
  evaluations: number;
}

/** Plain SOP inference result: everything in methods §2.4, in feature space. */
export interface SopResult {
  batch: number;
  numGroups: number;
  numFeatures: number;
  numOutputs: number;
  /** y [B, C]. */
  output: Float32Array;
  /** ẑ = c·z [B, m, C] (`logits_all`). */
  groupOutputs: Float32Array;
  /** h_j [B, m, k] (`pooler_outputs_all`), when exposed. */
  hidden?: Float32Array;
  /** M [B, m, d]. */
  masks: Float32Array;
  /** α [B, m, C] (`mask_weights`). */
  weights: Float32Array;
  /** α ⊙ ẑ [B, m, C] (`group_attributions`); Σ_j gives y. */
  contributions: Float32Array;
  /** c [B, m] (`loss_scale`). */
  scales: Float32Array;
  queries: Int32Array;
  heads: Int32Array;
  evaluations: number;
}

/**
 * Sum-of-Parts over a frozen backbone: group generator (attention over per-feature embeddings, top-k binarised, scale
 * c = 2·Σ_top a − 1) → masked inputs through the backbone in chunks → group selector (sparse cross-attention from class
 * queries to group keys) → y_c = Σ_j α_{j,c} c_j z_{j,c}.
 */
export class SopModel {
  readonly numFeatures: number;
  readonly numOutputs: number;
  readonly numGroups: number;
  readonly numHeads: number;
  keep: number;
  readonly queryMode: 'even' | 'random';
  readonly embeddingMode: 'projection' | 'backbone';
  readonly embedDim: number;
  readonly inputEmbedDim: number;
  readonly valueDim: number;
  readonly gammaG: number;
  readonly gammaS: number;
  readonly blurOpt: { kernel: number; sigma: number } | false;
  readonly maskBatchSize: number;
  readonly keys: 'hidden' | 'output';
  readonly keyDim: number;
  readonly task: Task;
  /** Generator and selector parameters, by name. */
  readonly params: Record<string, Tensor> = {};

  constructor(
    readonly context: Omit<SopContext, 'sample'>,
    sample: Inputs,
    readonly options: SopOptions = {},
  ) {
    const { backbone, space } = context;
    const d = space.numFeatures;
    this.numFeatures = d;
    this.numOutputs = context.numOutputs;
    this.task = context.task;
    this.numGroups = options.groups ?? Math.min(20, d);
    this.numHeads = options.heads ?? 1;
    this.keep = options.keep ?? 0.2;
    this.queryMode = options.queries ?? 'even';
    this.embeddingMode = options.embeddings ?? 'projection';
    this.embedDim = options.embedDim ?? 32;
    this.gammaG = options.groupGenScale ?? 1 / Math.sqrt(this.embedDim);
    this.gammaS = options.groupSelScale ?? 1;
    this.blurOpt = options.blur ?? false;
    this.maskBatchSize = options.maskBatchSize ?? 256;
    checkInt(this.numGroups, 'model.groups', 1, d, `at most the number of features (${d})`);
    checkInt(this.numHeads, 'model.heads', 1, 64, 'e.g. heads: 1');
    checkInt(this.embedDim, 'model.embedDim', 1, 1 << 16, 'e.g. embedDim: 32');
    checkInt(this.maskBatchSize, 'model.maskBatchSize', 1, 1 << 24, 'e.g. maskBatchSize: 256');
    checkKeep(this.keep, 'model.keep');
    if (!['even', 'random'].includes(this.queryMode)) throw new UserError(`model.queries: unknown '${this.queryMode}'`, 'use even or random');
    if (!['projection', 'backbone'].includes(this.embeddingMode)) throw new UserError(`model.embeddings: unknown '${this.embeddingMode}'`, 'use projection or backbone');
    if (this.blurOpt && !(this.blurOpt.kernel >= 1 && this.blurOpt.sigma > 0)) throw new UserError('model.blur: needs kernel ≥ 1 and sigma > 0', 'write e.g. blur: {kernel: 3, sigma: 1}');

    const rng = new Rng(options.seed ?? 0);
    // generator
    if (this.embeddingMode === 'projection') {
      const v = space.featureValues(firstRows(sample, 1));
      this.valueDim = v.shape[2];
      this.inputEmbedDim = this.embedDim;
      this.params['generator.proj.weight'] = parameter(xavierUniform([this.valueDim, this.embedDim], rng).data, [this.valueDim, this.embedDim]);
      this.params['generator.proj.bias'] = parameter(new Float32Array(this.embedDim), [this.embedDim]);
      if (options.positionEmbedding ?? true) this.params['generator.pos'] = parameter(normalInit([d, this.embedDim], 1, rng).data, [d, this.embedDim]);
    } else {
      if (!backbone.capabilities.embeddings || !backbone.info.embeddingDim) {
        throw new UserError(`model.embeddings: backbone '${backbone.name}' exposes no per-feature embeddings`, 'use embeddings: projection (the default), or expose an embeddings output from the backbone');
      }
      this.valueDim = 0;
      this.inputEmbedDim = backbone.info.embeddingDim;
    }
    for (let h = 0; h < this.numHeads; h++) {
      this.params[`generator.heads.${h}.query`] = parameter(xavierUniform([this.inputEmbedDim, this.embedDim], rng).data, [this.inputEmbedDim, this.embedDim]);
      this.params[`generator.heads.${h}.key`] = parameter(xavierUniform([this.inputEmbedDim, this.embedDim], rng).data, [this.inputEmbedDim, this.embedDim]);
    }
    // selector
    const sel = options.selectorKeys ?? 'auto';
    const cw = backbone.info.classifierWeight;
    const canHidden = backbone.capabilities.hidden && !!backbone.info.hiddenDim;
    if (sel === 'hidden' && !canHidden) throw new UserError(`model.selectorKeys: backbone '${backbone.name}' exposes no hidden state`, 'use selectorKeys: output (or auto)');
    this.keys = sel === 'output' ? 'output' : sel === 'hidden' ? 'hidden' : canHidden && cw && cw.shape[1] === backbone.info.hiddenDim ? 'hidden' : 'output';
    const C = this.numOutputs;
    if (this.keys === 'hidden') {
      const k = backbone.info.hiddenDim!;
      this.keyDim = k;
      let q: Float32Array;
      if (cw && cw.shape[0] === C && cw.shape[1] === k) q = Float32Array.from(cw.data);
      else q = normalInit([C, k], 1 / Math.sqrt(k), rng).data; // no classifier matrix: random class queries
      this.params['selector.classQueries'] = parameter(q, [C, k]);
    } else {
      this.keyDim = C;
      // identity: the initial logit of group j for class c is the group's own class score z_{j,c}
      this.params['selector.classQueries'] = parameter(Float32Array.from(eye(C).data), [C, C]);
    }
    this.params['selector.query'] = parameter(Float32Array.from(eye(this.keyDim).data), [this.keyDim, this.keyDim]);
    this.params['selector.key'] = parameter(Float32Array.from(eye(this.keyDim).data), [this.keyDim, this.keyDim]);
    for (const [name, p] of Object.entries(this.params)) p.name = name;
  }

  /** Load parameters saved by {@link parameterTensors} (e.g. from a checkpoint). */
  loadParameters(tensors: Record<string, FloatTensor>): void {
    for (const [name, p] of Object.entries(this.params)) {
      const t = tensors[name];
      if (!t) throw new UserError(`SOP checkpoint: tensor '${name}' is missing`, 'the checkpoint comes from a different model config; retrain or use the matching config');
      if (t.shape.join(',') !== p.shape.join(',')) {
        throw new UserError(`SOP checkpoint: '${name}' has shape [${t.shape}] but the model needs [${p.shape}]`, 'use the same model/data config as the run that wrote it');
      }
      p.data.set(t.data);
    }
  }

  parameterTensors(): Record<string, Tensor> {
    return this.params;
  }

  /** Candidate (head, query feature) pairs used by a forward. */
  candidates(head: number | undefined, rng?: Rng): { heads: Int32Array; queries: Int32Array } {
    const m = this.numGroups;
    const d = this.numFeatures;
    const heads = new Int32Array(m);
    const queries = new Int32Array(m);
    if (head !== undefined) {
      if (this.queryMode === 'random' && rng) {
        const perm = rng.permutation(d).slice(0, m).sort();
        queries.set(perm);
      } else for (let i = 0; i < m; i++) queries[i] = Math.floor((i * d) / m);
      heads.fill(head);
    } else {
      // all heads stacked (H·d candidates), m kept at evenly spaced indices (as the reference)
      const n = this.numHeads * d;
      for (let i = 0; i < m; i++) {
        const idx = Math.floor((i * n) / m);
        heads[i] = Math.floor(idx / d);
        queries[i] = idx % d;
      }
    }
    return { heads, queries };
  }

  /** The backbone's per-feature embeddings [B, d, e_in] (frozen). */
  private async backboneEmbeddings(inputs: Inputs): Promise<Tensor> {
    const out = await this.context.backbone.forward(inputs, { outputs: ['embeddings'] });
    if (!out.embeddings) throw new UserError(`backbone '${this.context.backbone.name}' returned no embeddings`, 'use model.embeddings: projection');
    return Tensor.fromData(out.embeddings);
  }

  /**
   * Attention logits γ_g·Q·Kᵀ [B, |qs|, d] of head h for the query features `qs`.
   *
   * Projection embeddings are E = V·W_p + b (b = bias + position embedding [d, e]) for the raw feature values
   * V [B, d, p], so Q = V_q·A + a and K = V·B_k + b_k with A = γ·W_p·W_q, B_k = W_p·W_k, a = γ·b_q·W_q, b_k = b·W_k. The
   * logits expand to (V_q·G + a·B_kᵀ)·Vᵀ + V_q·(A·b_kᵀ) + a·b_kᵀ with G = A·B_kᵀ [p, p]: every product with the batch
   * is then of width p (the values per feature) instead of the embedding width e, and the parameter-only products are
   * computed once per call. Same function (and gradients) as building E, Q and K; float32 rounding differs. Used when it
   * needs fewer multiply-adds (p small against e, e.g. 2×2 or 4×4 single-channel patches); otherwise E, Q and K are
   * built (e.g. 16×16×3 patches, p = 768).
   */
  private headLogits(h: number, qs: Int32Array, src: { values?: Tensor; embeddings?: Tensor }): Tensor {
    const Wq = this.params[`generator.heads.${h}.query`];
    const Wk = this.params[`generator.heads.${h}.key`];
    if (src.embeddings) {
      const emb = src.embeddings;
      const Q = matmul(indexSelect(emb, 1, qs), Wq);
      const K = matmul(emb, Wk);
      return scale(matmulNT(Q, K), this.gammaG);
    }
    const V = src.values!;
    const Wp = this.params['generator.proj.weight'];
    const bias = this.params['generator.proj.bias'];
    const pos = this.params['generator.pos'];
    // multiply-adds per example of the two forms (the factored one wins when p is below the embedding width)
    const [p, e, d, m] = [this.valueDim, this.embedDim, this.numFeatures, qs.length];
    if (m * p * (p + 2 * d) >= d * p * e + (m + d) * e * e + m * d * e) {
      let emb = add(matmul(V, Wp), bias);
      if (pos) emb = add(emb, pos);
      return this.headLogits(h, qs, { embeddings: emb });
    }
    const base = pos ? add(pos, bias) : reshape(bias, [1, this.embedDim]); // [d | 1, e]
    const baseQ = pos ? indexSelect(base, 0, qs) : base; // [m | 1, e]
    const A = scale(matmul(Wp, Wq), this.gammaG); // [p, e]
    const Bk = matmul(Wp, Wk); // [p, e]
    const a = scale(matmul(baseQ, Wq), this.gammaG); // [m | 1, e]
    const bk = matmul(base, Wk); // [d | 1, e]
    const Vq = indexSelect(V, 1, qs); // [B, m, p]
    const P = add(matmul(Vq, matmulNT(A, Bk)), matmulNT(a, Bk)); // [B, m, p]
    const L = add(matmulNT(P, V), matmul(Vq, matmulNT(A, bk))); // [B, m, d]
    return add(L, matmulNT(a, bk));
  }

  /** Group generator: attention [B, m, d], binary masks, scale c [B, m]. */
  private generate(src: { values?: Tensor; embeddings?: Tensor }, inputs: Inputs, heads: Int32Array, queries: Int32Array, n: number, deletion: boolean): { attention: Tensor; masks: Tensor; scales: Tensor } {
    const d = this.numFeatures;
    const B = inputs.x.shape[0];
    const parts: Tensor[] = [];
    for (let h = 0; h < this.numHeads; h++) {
      let count = 0;
      for (let i = 0; i < heads.length; i++) if (heads[i] === h) count++;
      if (!count) continue;
      const qs = new Int32Array(count);
      for (let i = 0, c = 0; i < heads.length; i++) if (heads[i] === h) qs[c++] = queries[i];
      parts.push(this.headLogits(h, qs, src));
    }
    let logits = parts.length === 1 ? parts[0] : concat(parts, 1);
    const valid = this.context.space.validFeatures?.(inputs);
    if (valid) {
      const bias = new Float32Array(B * d);
      let any = false;
      for (let i = 0; i < bias.length; i++) if (valid[i] === 0) { bias[i] = -1e4; any = true; }
      if (any) logits = add(logits, new Tensor(bias, [B, 1, d]));
    }
    if (this.blurOpt) logits = blur(logits, this.context.space.grid, this.blurOpt.kernel, this.blurOpt.sigma);
    // a = softmax over features, M = top-n of a, c = 2·Σ_top a − 1 (one fused pass per row; c carries the gradient)
    return topkMass(logits, n, !deletion);
  }

  /** Run the backbone on the B·m masked inputs in chunks of maskBatchSize rows. */
  private async runGroups(inputs: Inputs, masks: Float32Array, B: number): Promise<{ z: Float32Array; hidden?: Float32Array }> {
    const m = this.numGroups;
    const d = this.numFeatures;
    const C = this.numOutputs;
    const R = B * m;
    const z = new Float32Array(R * C);
    const hidden = this.keys === 'hidden' ? new Float32Array(R * this.keyDim) : undefined;
    const rows = new Int32Array(R);
    for (let r = 0; r < R; r++) rows[r] = Math.floor(r / m);
    const outputs = this.keys === 'hidden' ? ['hidden'] : [];
    for (let start = 0; start < R; start += this.maskBatchSize) {
      const end = Math.min(R, start + this.maskBatchSize);
      const masked = this.context.masker.apply(inputs, masks.subarray(start * d, end * d), rows.subarray(start, end), this.context.space);
      const out = await this.context.backbone.forward(masked, { outputs });
      if (out.output.data.length !== (end - start) * C) {
        throw new UserError(`backbone '${this.context.backbone.name}' returned output shape [${out.output.shape}] for ${end - start} rows; expected [${end - start}, ${C}]`, 'check that the data set has as many classes/outputs as the backbone');
      }
      z.set(out.output.data, start * C);
      if (hidden) {
        if (!out.hidden) throw new UserError(`backbone '${this.context.backbone.name}' returned no hidden state`, 'set model.selectorKeys: output');
        hidden.set(out.hidden.data, start * this.keyDim);
      }
    }
    return { z, hidden };
  }

  /** One forward. With `grad`, records a graph through c (generator) and the selector. */
  async forward(inputs: Inputs, options: SopForwardOptions = {}): Promise<SopTensors> {
    const grad = options.grad ?? false;
    const run = <T>(f: () => T): T => (grad ? f() : noGrad(f));
    const B = inputs.x.shape[0];
    const m = this.numGroups;
    const C = this.numOutputs;
    const d = this.numFeatures;
    const keep = options.keep ?? this.keep;
    checkKeep(keep, 'keep');
    const n = Math.max(1, Math.min(d, Math.floor(d * keep + 1e-6)));
    const { heads, queries } = this.candidates(options.head, this.queryMode === 'random' ? options.rng : undefined);
    const embRaw = this.embeddingMode === 'backbone' ? await this.backboneEmbeddings(inputs) : undefined;
    const src = embRaw ? { embeddings: embRaw } : { values: Tensor.fromData(this.context.space.featureValues(inputs)) };
    const gen = run(() => this.generate(src, inputs, heads, queries, n, options.deletion ?? false));
    const maskData = gen.masks.data;
    const { z, hidden } = await this.runGroups(inputs, maskData, B);
    const sel = run(() => {
      const keys = new Tensor(this.keys === 'hidden' ? hidden! : z, [B, m, this.keyDim]);
      // S = γ_s (H W_k)(Q_c W_q)ᵀ, evaluated as H (γ_s W_k (Q_c W_q)ᵀ): [k, C] instead of projecting all B·m keys
      const qp = matmul(this.params['selector.classQueries'], this.params['selector.query']); // [C, k]
      const u = scale(matmulNT(this.params['selector.key'], qp), this.gammaS); // γ_s·W_k·(Q_c W_q)ᵀ [k, C]
      const logits = matmul(keys, u); // [B, m, C]
      const weights = sparsemax(logits, 1);
      const scaledOutputs = mul(new Tensor(z, [B, m, C]), reshape(gen.scales, [B, m, 1]));
      const contributions = mul(weights, scaledOutputs);
      const output = sum(contributions, 1);
      return { weights, scaledOutputs, contributions, output };
    });
    return {
      ...sel,
      scales: gen.scales,
      attention: gen.attention,
      masks: maskData,
      rawOutputs: z,
      hidden,
      queries,
      heads,
      evaluations: B * m,
    };
  }

  /** Inference (no graph): every output of methods §2.4. */
  async predict(inputs: Inputs, options: Omit<SopForwardOptions, 'grad' | 'head' | 'rng'> = {}): Promise<SopResult> {
    const t = await this.forward(inputs, { ...options, grad: false });
    return {
      batch: inputs.x.shape[0],
      numGroups: this.numGroups,
      numFeatures: this.numFeatures,
      numOutputs: this.numOutputs,
      output: t.output.data,
      groupOutputs: t.scaledOutputs.data,
      hidden: t.hidden,
      masks: t.masks,
      weights: t.weights.data,
      contributions: t.contributions.data,
      scales: t.scales.data,
      queries: t.queries,
      heads: t.heads,
      evaluations: t.evaluations,
    };
  }
}

function checkInt(v: number, what: string, lo: number, hi: number, hint: string): void {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new UserError(`${what}: ${v} must be an integer in [${lo}, ${hi}]`, `use ${hint}`);
}

function checkKeep(v: number, what: string): void {
  if (!(v > 0 && v <= 1)) throw new UserError(`${what}: ${v} is not in (0, 1]`, 'use a fraction of features such as 0.2');
}

/** The first `n` rows of every input tensor (views). */
export function firstRows(inputs: Inputs, n: number): Inputs {
  const out: Record<string, TensorData> = {};
  for (const [k, v] of Object.entries(inputs)) out[k] = sliceRows(v, 0, Math.min(n, v.shape[0]));
  return out as Inputs;
}
